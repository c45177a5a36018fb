"""The transfer engine: one HTTP(S) file to one fsspec path, verified, resumable, atomic.

A file reaches its final path only by a rename from a staging file unique to the attempt,
after its size and sha256 pass, so a failed or interrupted transfer never leaves a file
there and never touches an earlier good copy (see `storage.staging`). Bodies stream in
fixed pieces: memory does not grow with the file.

Dropped connections resume with `Range` within a run. Across runs, a staging file left by
a killed or interrupted run is resumed when the source's validators (ETag, Last-Modified,
length) recorded beside it still match; its bytes are hashed once before continuing, and
`If-Range` makes a source that changed in between come back whole.

An earlier copy is trusted without reading it when its recorded fingerprint (see
`storage.fingerprint`) still matches; `deep=True` re-hashes it whatever the fingerprint says.
"""

from __future__ import annotations

import errno
import hashlib
import queue
import re
import threading
from dataclasses import dataclass
from typing import Any, BinaryIO

import requests
from upath import UPath

from em_assets.logger import Logger
from em_assets.storage import fingerprint
from em_assets.storage.fingerprint import Fingerprint
from em_assets.storage.space import out_of_space, require_free_space
from em_assets.storage.staging import Resumable, SizeMismatchError, Staging
from em_assets.transfer.client import TRANSIENT_ERRORS, HttpClient, RemoteVersion
from em_assets.transfer.content import ExpectedFormat
from em_assets.transfer.errors import IntegrityError, RetriesExhaustedError, UnexpectedContentError
from em_assets.transfer.progress import Progress
from em_assets.transfer.retry import Attempts, TryAgain

CHUNK_BYTES = 1024 * 1024
WRITE_QUEUE_DEPTH = 8
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


@dataclass(frozen=True)
class StoredFile:
    """What was recorded of an earlier copy: enough to trust it without fetching again."""

    bytes: int
    sha256: str
    version: RemoteVersion
    fingerprint: Fingerprint | None = None


@dataclass(frozen=True)
class FetchResult:
    path: UPath
    url: str
    bytes: int
    sha256: str
    version: RemoteVersion
    payload_bytes: int
    reused: bool
    fingerprint: Fingerprint | None = None
    """Of the stored file, when its sha256 is known to describe it (see `storage.fingerprint`)."""
    trusted_by_fingerprint: bool = False
    """Kept because its fingerprint was unchanged: not a byte of it was read, so whatever was
    recorded of those very bytes (their header, say) still holds."""


@dataclass(frozen=True)
class StoredCheck:
    """Whether an earlier copy is still what was recorded, and how that was decided."""

    matches: bool
    read_content: bool
    fingerprint: Fingerprint | None


def sha256_of(path: UPath, chunk_bytes: int = CHUNK_BYTES) -> str:
    """The sha256 of a stored file, read in pieces."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while piece := handle.read(chunk_bytes):
            digest.update(piece)
    return digest.hexdigest()


def check_stored_copy(path: UPath, expected: StoredFile, deep: bool = False) -> StoredCheck:
    """Does the file at `path` still have the recorded size and sha256?

    Decided from its fingerprint when that is unchanged and trustworthy (no byte read);
    otherwise, or with `deep`, by hashing it, recording a fresh fingerprint if it matches.
    """
    if not deep and fingerprint.unchanged(expected.fingerprint, path):
        return StoredCheck(True, False, expected.fingerprint)
    if not path.exists() or path.fs.size(path.path) != expected.bytes:
        return StoredCheck(False, False, None)
    matches, taken = fingerprint.around(path, lambda: sha256_of(path) == expected.sha256)
    return StoredCheck(matches, True, taken)


def stored_copy_matches(path: UPath, expected: StoredFile, deep: bool = False) -> bool:
    """True when the file at `path` still has the recorded size and sha256."""
    return check_stored_copy(path, expected, deep).matches


def fetch_file(
    client: HttpClient,
    url: str,
    destination: UPath,
    *,
    label: str,
    log: Logger,
    expected_format: ExpectedFormat | None = None,
    previous: StoredFile | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    remote: RemoteVersion | None = None,
    deep: bool = False,
    log_reuse: bool = True,
) -> FetchResult:
    """Make `destination` a verified copy of `url`, moving no payload if it already is one.

    `remote` is the source's version when the caller has just asked for it (saves a HEAD;
    a server that does not answer HEAD is then not asked again). `deep` re-hashes an
    earlier copy even when its fingerprint is unchanged. `log_reuse=False` leaves saying
    that a copy was kept to the caller (one line for a whole file set: each line is an
    event written to Dagster's event log).
    """
    if remote is None:
        remote = client.head(url, what=label)
    if previous is not None and remote.same_as(previous.version):
        stored = check_stored_copy(destination, previous, deep)
        if stored.matches:
            if log_reuse:
                how = "re-hashed" if stored.read_content else "fingerprint unchanged"
                log.info(
                    f"{label}: source unchanged and stored copy verified ({how}); "
                    "nothing to transfer"
                )
            return FetchResult(
                destination,
                url,
                previous.bytes,
                previous.sha256,
                remote,
                0,
                reused=True,
                fingerprint=stored.fingerprint,
                trusted_by_fingerprint=not stored.read_content,
            )
        log.info(f"{label}: source unchanged but stored copy missing or altered; fetching again")

    staging = Staging(destination)
    source = _source_record(url, remote)
    resumable = _resumable(staging, source, label, log)
    writer = _HashingWriter(staging, source, resumable)
    download = _Download(
        client, url, writer, label, log, expected_format, chunk_bytes, remote, writer.resumed
    )
    try:
        download.run()
        if download.total is not None and download.received != download.total:
            raise IntegrityError(
                f"{label}: received {download.received} of {download.total} bytes", url=url
            )
        try:
            writer.commit(download.received)
        except SizeMismatchError as error:
            raise IntegrityError(f"{label}: {error}", url=url) from error
    except (RetriesExhaustedError, KeyboardInterrupt, SystemExit):
        # Nothing wrong with the bytes so far: leave them for the next run to resume.
        writer.keep()
        raise
    except BaseException as error:
        if not isinstance(error, Exception):  # run terminated (Dagster's interrupt, signals)
            writer.keep()
        else:
            writer.abort()
        raise
    return FetchResult(
        destination,
        url,
        download.received,
        download.sha256,
        download.version,
        download.payload_bytes,
        reused=False,
        fingerprint=fingerprint.take(destination),  # racy yet: see `fingerprint.settle`
    )


def _source_record(url: str, remote: RemoteVersion) -> dict[str, Any] | None:
    """What a resume record keeps of the source: None when it has no validators, since
    bytes from an unidentifiable source cannot be trusted to continue."""
    if not remote.is_known:
        return None
    return {
        "url": url,
        "etag": remote.etag,
        "last_modified": remote.last_modified,
        "content_length": remote.content_length,
    }


def _resumable(
    staging: Staging, source: dict[str, Any] | None, label: str, log: Logger
) -> Resumable | None:
    """A staging file an earlier run left, if the source still has the same validators."""
    found = staging.find_resumable()
    if found is None:
        return None
    length = (source or {}).get("content_length")
    if source is None or found.source != source or (length is not None and found.bytes > length):
        log.info(f"{label}: discarding a partial copy from an earlier run (the source changed)")
        staging.forget_resumable()
        return None
    log.info(f"{label}: resuming a partial copy from an earlier run at byte {found.bytes:,}")
    return found


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """`bytes START-END/TOTAL` as numbers (TOTAL None when `*`), or None if malformed."""
    match = _CONTENT_RANGE.match((value or "").strip())
    if not match:
        return None
    start, end, total = match.groups()
    return int(start), int(end), None if total == "*" else int(total)


class _HashingWriter:
    """Hashes and writes in a worker thread, so the socket is read while the disk works.

    The queue is bounded, which bounds memory to `depth` pieces whatever the file size.
    Nothing reaches the destination until `commit`.
    """

    def __init__(
        self,
        staging: Staging,
        source: dict[str, Any] | None,
        resumable: Resumable | None = None,
        depth: int = WRITE_QUEUE_DEPTH,
    ) -> None:
        self.staging = staging
        self.source = source
        self.depth = depth
        self.file: BinaryIO | None = None
        self.resumed = 0
        self._start(resumable)

    def _start(self, resumable: Resumable | None = None) -> None:
        self.hasher = hashlib.sha256()
        self.error: BaseException | None = None
        self.written = 0
        if resumable is not None:
            self.file = self.staging.resume(resumable)
            self.resumed = self.written = self._hash_existing(resumable)
        else:
            self.file = self.staging.open(self.source)
            self.resumed = 0
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=self.depth)
        self.thread = threading.Thread(target=self._work, name="em-assets-writer", daemon=True)
        self.thread.start()

    def _hash_existing(self, resumable: Resumable) -> int:
        """Hash the bytes an earlier run left, once, so the final sha256 covers them."""
        with resumable.path.open("rb") as handle:
            while piece := handle.read(CHUNK_BYTES):
                self.hasher.update(piece)
        return resumable.bytes

    def _work(self) -> None:
        while (piece := self.queue.get()) is not None:
            if self.error is None:
                try:
                    assert self.file is not None
                    self.file.write(piece)
                    self.hasher.update(piece)
                    self.written += len(piece)
                except OSError as error:
                    full = error.errno == errno.ENOSPC
                    where = self.staging.destination
                    self.error = out_of_space(error, where, self.written) if full else error
                except BaseException as error:  # handed to the reading thread
                    self.error = error

    def write(self, piece: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(piece)

    def _drain(self) -> None:
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()

    def restart(self) -> None:
        """Discard everything written so far and start empty."""
        self.abort()
        self._start()

    def digest(self) -> str:
        """The sha256 of everything written, once all of it has reached the file."""
        self._drain()
        if self.error is not None:
            raise self.error
        return self.hasher.hexdigest()

    def commit(self, size: int) -> None:
        self._drain()
        assert self.file is not None
        self.staging.commit(self.file, size)
        self.file = None

    def abort(self) -> None:
        self._drain()
        if self.file is not None:
            self.staging.discard(self.file)
            self.file = None

    def keep(self) -> None:
        """Stop, leaving what was written for a later run to resume."""
        self._drain()
        if self.file is not None:
            self.staging.keep(self.file)
            self.file = None


class _Download:
    """One file's GET, resumed with Range across dropped connections until complete."""

    def __init__(
        self,
        client: HttpClient,
        url: str,
        writer: _HashingWriter,
        label: str,
        log: Logger,
        expected_format: ExpectedFormat | None,
        chunk_bytes: int,
        remote: RemoteVersion,
        resumed: int = 0,
    ) -> None:
        self.client = client
        self.url = url
        self.writer = writer
        self.label = label
        self.log = log
        self.expected_format = expected_format
        self.chunk_bytes = chunk_bytes
        self.version = remote
        self.total: int | None = remote.content_length
        self.received = resumed
        self.payload_bytes = 0
        self.sha256 = ""

    def run(self) -> None:
        if self.total is not None:
            require_free_space(
                self.writer.staging.destination.parent, self.total - self.received, self.label
            )
        progress = Progress(self.label, self.total, self.log)
        if self.received:
            progress.advance(self.received)
        self.client.retrying(
            self.url, self.label, lambda attempts: self._attempt(attempts, self.writer, progress)
        )
        self.sha256 = self.writer.digest()
        progress.finish()

    def _resume_headers(self) -> dict[str, str]:
        if not self.received:
            return {}
        headers = {"Range": f"bytes={self.received}-"}
        # If-Range makes a changed resource come back whole (200) instead of spliced.
        etag = self.version.etag
        if etag and not etag.startswith("W/"):
            headers["If-Range"] = etag
        elif self.version.last_modified:
            headers["If-Range"] = self.version.last_modified
        return headers

    def _restart(self, writer: _HashingWriter, progress: Progress, reason: str) -> None:
        self.log.warning(f"{self.label}: {reason}; restarting from byte 0")
        writer.restart()
        self.received = 0
        progress.restart(self.total)

    def _attempt(self, attempts: Attempts, writer: _HashingWriter, progress: Progress) -> None:
        """One GET, continuing from the bytes already received; returns when the file is
        complete, raises `TryAgain` for the retry loop to call it again."""
        asked_from = self.received
        # 416 to a request from the very end: everything had arrived before the drop.
        done = frozenset({416}) if asked_from and asked_from == self.total else frozenset()
        response = self.client.send("GET", self.url, attempts, self._resume_headers(), done)
        with response:
            status = response.status_code
            if status == 416:
                return
            self._accept_start(response, asked_from, writer, progress)
            if self.received == 0:
                self._check_content_type(response)
            try:
                # read1 hands over whatever has arrived, so bytes received before a dropped
                # connection are kept and the resume starts right after them.
                while piece := response.raw.read1(self.chunk_bytes, decode_content=True):
                    if self.received == 0:
                        self._check_head(piece, status)
                    writer.write(piece)
                    self.received += len(piece)
                    self.payload_bytes += len(piece)
                    progress.advance(len(piece))
                    attempts.progressed()
            except TRANSIENT_ERRORS as error:
                raise TryAgain(f"connection lost after {self.received} bytes ({error})") from error
        if self.total is not None and self.received < self.total:
            raise TryAgain(f"body ended at {self.received} of {self.total} bytes")
        if self.total is not None and self.received > self.total:
            raise IntegrityError(
                f"{self.label}: received {self.received} bytes, more than the announced "
                f"{self.total}",
                url=self.url,
                status=status,
                attempts=attempts.total,
            )

    def _accept_start(
        self,
        response: requests.Response,
        asked_from: int,
        writer: _HashingWriter,
        progress: Progress,
    ) -> None:
        """Decide whether the body continues at `asked_from`; restart from zero if it does not
        (then `TryAgain` when the answer itself cannot be used)."""
        status = response.status_code
        headers = response.headers
        if status == 206:
            parsed = parse_content_range(headers.get("Content-Range"))
            if parsed is None or parsed[0] != asked_from or not asked_from:
                self._restart(
                    writer,
                    progress,
                    f"untrusted partial answer (Content-Range {headers.get('Content-Range')!r} "
                    f"for a request from byte {asked_from})",
                )
                raise TryAgain("partial answer did not start at the requested byte")
            if parsed[2] is not None:
                self.total = parsed[2]
        else:
            if asked_from:
                self._restart(writer, progress, "server answered 200 to a resume request")
            self.total = RemoteVersion.from_headers(headers).content_length
        fresh = RemoteVersion.from_headers(headers)
        self.version = RemoteVersion(
            etag=fresh.etag or self.version.etag,
            last_modified=fresh.last_modified or self.version.last_modified,
            content_length=self.total,
        )
        progress.total = self.total

    def _check_content_type(self, response: requests.Response) -> None:
        content_type = response.headers.get("Content-Type", "")
        if self.expected_format is not None and "text/html" in content_type.lower():
            raise UnexpectedContentError(
                f"{self.label}: server sent an HTML page ({content_type}) "
                f"where {self.expected_format.name} was expected",
                url=self.url,
                status=response.status_code,
            )

    def _check_head(self, head: bytes, status: int) -> None:
        if self.expected_format is None:
            return
        problem = self.expected_format.describe_mismatch(head)
        if problem:
            raise UnexpectedContentError(
                f"{self.label}: {problem}; refusing to store it", url=self.url, status=status
            )
