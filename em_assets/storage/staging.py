"""Where bytes wait until they are accepted, so nothing half-written is ever at a final path.

On a filesystem, bytes go to a staging file beside the target whose name is unique to the
attempt (`.<name>.<token>.part`), created exclusively and never through an existing link,
so neither a concurrent writer nor a link planted under the root can redirect them. The
accepted file is renamed into place: atomic on one filesystem, and a rename replaces a link
at the final path instead of writing through it. A directory where the file belongs is
refused by name.

A staging file may be kept after a failed or killed transfer and resumed by the next run:
`.<name>.resume.json` beside it records which staging file it is and the source's
validators; the engine resumes only when they still match (see `transfer.engine`).

On an object store an upload only becomes visible when it completes, so bytes go straight
to the final key and the upload is completed on commit or aborted on discard: a rename
there would be a slow copy, and no more atomic. Such uploads are not resumed across runs.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import stat
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, BinaryIO

from upath import UPath

# The one list of object stores: written directly (see above), and named by bucket in a root.
OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl"})
LOCAL = frozenset({"", "file", "local"})
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_REOPEN = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC


class SizeMismatchError(OSError):
    """What was stored is not as long as what was written."""


class WrongTypeError(IsADirectoryError):
    """Something other than a file (or a link) stands where a file belongs."""


def is_object_store(path: UPath) -> bool:
    return path.protocol in OBJECT_STORES


def is_local(path: UPath) -> bool:
    return path.protocol in LOCAL


def _resume_record(destination: UPath) -> UPath:
    return destination.with_name(f".{destination.name}.resume.json")


@dataclass(frozen=True)
class Resumable:
    """A staging file left by an earlier attempt, and what its source looked like then."""

    path: UPath
    bytes: int
    source: dict[str, Any]


class Staging:
    """One pending write of `destination`: open (or resume), then exactly one of commit or
    discard (or keep, to let a later run resume)."""

    def __init__(self, destination: UPath) -> None:
        self.destination = destination
        self.direct = is_object_store(destination)
        self.local = is_local(destination)
        self.path = destination

    def open(self, source: dict[str, Any] | None = None) -> BinaryIO:
        """A new, empty staging file. With `source` (the remote's validators) on a local
        root, a record beside it lets a later run resume it if this one dies."""
        if self.direct:
            return self.destination.open("wb")
        # A new name for every attempt: two writers, or a retry after a restart, never share one.
        token = secrets.token_hex(6)
        self.path = self.destination.with_name(f".{self.destination.name}.{token}.part")
        self.destination.parent.mkdir(parents=True, exist_ok=True)
        if not self.local:
            return self.path.open("wb")
        handle = os.fdopen(os.open(self.path.path, _CREATE, 0o644), "wb")
        if source is not None:
            record = {"part": self.path.name, "source": source}
            write_atomically(_resume_record(self.destination), json.dumps(record).encode())
        return handle

    def find_resumable(self) -> Resumable | None:
        """The staging file an earlier attempt left for this destination, if it is still a
        plain file of ours (never a link); anything unusable is removed."""
        if not self.local:
            return None
        record_path = _resume_record(self.destination)
        try:
            record = json.loads(record_path.read_bytes())
            part = self.destination.with_name(record["part"])
            source = dict(record["source"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not (part.name.startswith(f".{self.destination.name}.") and part.name.endswith(".part")):
            self.forget_resumable()
            return None
        try:
            status = os.lstat(part.path)
        except FileNotFoundError:
            self.forget_resumable()
            return None
        if not _is_regular(status):
            self.forget_resumable()
            return None
        return Resumable(part, status.st_size, source)

    def resume(self, found: Resumable) -> BinaryIO:
        """Append to a staging file found by `find_resumable`."""
        self.path = found.path
        return os.fdopen(os.open(self.path.path, _REOPEN), "ab")

    def forget_resumable(self) -> None:
        """Remove the resume record and the staging file it names."""
        record_path = _resume_record(self.destination)
        with suppress(OSError, ValueError, KeyError, TypeError):
            part = self.destination.with_name(json.loads(record_path.read_bytes())["part"])
            if part.name.startswith(f".{self.destination.name}.") and part.name.endswith(".part"):
                os.unlink(part.path)
        with suppress(FileNotFoundError):
            os.unlink(record_path.path)

    def commit(self, handle: BinaryIO, size: int) -> None:
        """Make the written bytes the destination, after checking their length."""
        if self.direct:
            handle.close()
            return
        handle.flush()
        if self.local:
            os.fsync(handle.fileno())
        handle.close()
        stored = self.path.fs.size(self.path.path)
        if stored != size:
            self._remove_partial()
            raise SizeMismatchError(f"{self.path}: {stored} bytes stored, {size} written")
        if self.local:
            self._move_into_place()
            with suppress(FileNotFoundError):
                os.unlink(_resume_record(self.destination).path)
        else:
            self.path.fs.mv(self.path.path, self.destination.path)

    def _move_into_place(self) -> None:
        target = self.destination.path
        with suppress(FileNotFoundError):
            if not _is_regular(os.lstat(target)) and not os.path.islink(target):
                self._remove_partial()
                raise WrongTypeError(
                    errno.EISDIR,
                    f"{target} is a directory (or another non-file) where a file belongs; "
                    "nothing was moved into it. Move it out of the storage root or delete it, "
                    "then materialize again",
                )
        # rename() replaces a file or a link at the target, never writing through a link.
        os.replace(self.path.path, target)
        directory = os.open(os.path.dirname(target), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def discard(self, handle: BinaryIO) -> None:
        """Throw the written bytes away; the destination keeps whatever it had."""
        if self.direct:
            _abort_upload(handle)
            return
        handle.close()
        self._remove_partial()
        if self.local:
            with suppress(FileNotFoundError):
                os.unlink(_resume_record(self.destination).path)

    def keep(self, handle: BinaryIO) -> None:
        """Leave the staging file (and its resume record) for a later run; on an object
        store, where there is nothing to resume, this is a discard."""
        if self.direct or not self.local:
            self.discard(handle)
            return
        handle.flush()
        handle.close()

    def _remove_partial(self) -> None:
        with suppress(FileNotFoundError):
            self.path.fs.rm(self.path.path)


def _is_regular(status: os.stat_result) -> bool:
    return stat.S_ISREG(status.st_mode)


def _abort_upload(handle: BinaryIO) -> None:
    """Abort a multipart (s3fs) or resumable (gcsfs) upload, so nothing becomes visible.

    fsspec's buffered files complete an upload on close(), and close() runs again when the
    object is garbage-collected; `discard()` alone forgets the buffer but leaves the upload
    to be completed by that later close. Aborting explicitly and marking the file closed is
    what stops it.
    """
    abort = getattr(handle, "discard", None)
    if callable(abort):
        abort()
    # AbstractBufferedFile.close() returns at once when `closed` is set. fsspec has no public
    # "abort and close": its deferred-commit mode (autocommit=False, then commit()/discard())
    # still uploads on close(), and close() after s3fs's discard() flushes a buffer that
    # discard() has dropped. `closed` is a settable property of AbstractBufferedFile (gcsfs's
    # own discard() sets it); setattr because `BinaryIO.closed` is typed read-only.
    setattr(handle, "closed", True)  # noqa: B010


def write_atomically(path: UPath, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old content or the new, never half."""
    staging = Staging(path)
    handle = staging.open()
    try:
        handle.write(data)
    except BaseException:
        staging.discard(handle)
        raise
    staging.commit(handle, len(data))
