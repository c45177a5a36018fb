"""Where bytes wait until they are accepted, so nothing half-written is ever at a final path.

On a filesystem, bytes go to `<name>.part` beside the target and are renamed into place
(atomic on one filesystem). On an object store, an upload only becomes visible when it
completes, so bytes go straight to the final key and the upload is completed only on
commit or aborted on discard: a rename there would be a slow copy, and no more atomic.
"""

from __future__ import annotations

from contextlib import suppress
from typing import BinaryIO

from upath import UPath

OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl"})


class SizeMismatchError(OSError):
    """What was stored is not as long as what was written."""


def is_object_store(path: UPath) -> bool:
    return path.protocol in OBJECT_STORES


class Staging:
    """One pending write of `destination`: open, then exactly one of commit or discard."""

    def __init__(self, destination: UPath) -> None:
        self.destination = destination
        self.direct = is_object_store(destination)
        self.path = (
            destination if self.direct else destination.with_name(destination.name + ".part")
        )

    def open(self) -> BinaryIO:
        if not self.direct:
            self.destination.parent.mkdir(parents=True, exist_ok=True)
        return self.path.open("wb")

    def commit(self, handle: BinaryIO, size: int) -> None:
        """Make the written bytes the destination, after checking their length."""
        handle.close()
        if self.direct:
            return
        stored = self.path.fs.size(self.path.path)
        if stored != size:
            self._remove_partial()
            raise SizeMismatchError(f"{self.path}: {stored} bytes stored, {size} written")
        self.path.fs.mv(self.path.path, self.destination.path)

    def discard(self, handle: BinaryIO) -> None:
        """Throw the written bytes away; the destination keeps whatever it had."""
        if self.direct:
            # Abort the multipart or resumable upload. Marking the handle closed stops
            # fsspec from completing the upload when the object is garbage-collected.
            handle.discard()  # type: ignore[attr-defined]
            handle.closed = True  # type: ignore[misc]
            return
        handle.close()
        self._remove_partial()

    def _remove_partial(self) -> None:
        with suppress(FileNotFoundError):
            self.path.fs.rm(self.path.path)


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
