"""Between transfers and manifests: what a stored file's entry says, and what it said last time."""

from __future__ import annotations

from typing import Any

from em_assets.manifest.model import FileEntry, Manifest
from em_assets.transfer.client import RemoteVersion
from em_assets.transfer.engine import FetchResult, StoredFile


def previous_copy(previous: Manifest | None, path: str) -> StoredFile | None:
    """The earlier manifest's record of `path`, in the form the engine uses to skip a transfer."""
    entry = previous_entry(previous, path)
    if entry is None:
        return None
    return StoredFile(
        entry.bytes,
        entry.sha256,
        RemoteVersion(entry.etag, entry.last_modified, entry.bytes),
        entry.fingerprint,
    )


def previous_entry(previous: Manifest | None, path: str) -> FileEntry | None:
    """The earlier manifest's entry of the stored file `path`, if it had one."""
    if previous is None:
        return None
    return next((e for e in previous.files if e.path == path and e.kind == "file"), None)


def file_entry(
    result: FetchResult,
    path: str,
    shape: list[int] | None,
    dtype: str | None,
    header: dict[str, Any] | None = None,
) -> FileEntry:
    return FileEntry(
        path=path,
        bytes=result.bytes,
        sha256=result.sha256,
        source_url=result.url,
        etag=result.version.etag,
        last_modified=result.version.last_modified,
        shape=shape,
        dtype=dtype,
        fingerprint=result.fingerprint,
        header=header,
    )
