"""Between transfers and manifests: what a stored file's entry says, and what it said last time."""

from __future__ import annotations

from em_assets.manifest.model import FileEntry, Manifest
from em_assets.transfer.client import RemoteVersion
from em_assets.transfer.engine import FetchResult, StoredFile


def previous_copy(previous: Manifest | None, path: str) -> StoredFile | None:
    """The earlier manifest's record of `path`, in the form the engine uses to skip a transfer."""
    if previous is None:
        return None
    for entry in previous.files:
        if entry.path == path and entry.kind == "file":
            return StoredFile(
                entry.bytes,
                entry.sha256,
                RemoteVersion(entry.etag, entry.last_modified, entry.bytes),
                entry.fingerprint,
            )
    return None


def file_entry(
    result: FetchResult, path: str, shape: list[int] | None, dtype: str | None
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
    )
