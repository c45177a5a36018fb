"""The mechanics under the file-set flow (`file_set_flow`): probing, downloading, describing.

The probe (a HEAD per file) is the cheap part: it gives the source's version, which the
asset records and the source check compares, and it is handed to the engine so a file that
did not change is verified locally instead of fetched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from upath import UPath

from em_assets.logger import Logger
from em_assets.manifest.fetched import file_entry, previous_copy, previous_entry
from em_assets.manifest.model import FileEntry, Manifest, version_digest
from em_assets.storage import fingerprint
from em_assets.transfer.client import HttpClient, RemoteVersion
from em_assets.transfer.content import ExpectedFormat
from em_assets.transfer.engine import fetch_file


class Described(NamedTuple):
    shape: list[int]
    """z, y, x or rows, columns."""
    dtype: str
    header: dict[str, Any] | None
    """Whatever else the header said that the manifest records (`FileEntry.header`)."""


Describe = Callable[[UPath, FileEntry | None], Described]
"""A stored file, from its header; given the earlier manifest entry when the file was kept on
an unchanged fingerprint (its bytes are the ones that entry describes), so what the entry
recorded may stand in for reading the header again."""


@dataclass(frozen=True)
class RemoteFile:
    path: str
    """Relative to the storage root: `{asset}/{name}`."""
    url: str
    destination: UPath


@dataclass(frozen=True)
class Downloaded:
    entries: list[FileEntry]
    payload_bytes: int


def probe_files(client: HttpClient, files: list[RemoteFile]) -> dict[str, RemoteVersion]:
    """Each file's current version (ETag, Last-Modified, length), by HEAD."""
    return {f.path: client.head(f.url, what=f.path) for f in files}


def source_version(remotes: dict[str, RemoteVersion], document: Any = None) -> str:
    """The version of a file dataset: its files' validators plus any metadata document."""
    files = [
        [path, v.etag, v.last_modified, v.content_length] for path, v in sorted(remotes.items())
    ]
    return version_digest({"files": files, "document": document})


def download(
    client: HttpClient,
    files: list[RemoteFile],
    remotes: dict[str, RemoteVersion],
    previous: Manifest | None,
    expected_format: ExpectedFormat,
    describe: Describe,
    log: Logger,
    deep: bool = False,
) -> Downloaded:
    """Fetch (or verify and keep) every file, then describe it (from its header, or from the
    earlier entry of a file kept on its fingerprint); `deep` re-hashes kept files even when
    their fingerprint is unchanged."""
    entries, payload = [], 0
    kept: dict[str, list[str]] = {"fingerprint unchanged": [], "re-hashed": []}
    for remote_file in files:
        result = fetch_file(
            client,
            remote_file.url,
            remote_file.destination,
            label=remote_file.path,
            log=log,
            expected_format=expected_format,
            previous=previous_copy(previous, remote_file.path),
            remote=remotes[remote_file.path],
            deep=deep,
            log_reuse=False,
        )
        if result.reused:
            how = "fingerprint unchanged" if result.trusted_by_fingerprint else "re-hashed"
            kept[how].append(remote_file.path)
        payload += result.payload_bytes
        earlier = (
            previous_entry(previous, remote_file.path) if result.trusted_by_fingerprint else None
        )
        shape, dtype, header = describe(remote_file.destination, earlier)
        entries.append(file_entry(result, remote_file.path, shape, dtype, header))
    log_kept(kept, log)
    # Files just written are inside their racy window: settled together, one wait at most.
    settled = [
        entry.model_copy(
            update={"fingerprint": fingerprint.settle(remote.destination, entry.fingerprint)}
        )
        for entry, remote in zip(entries, files, strict=True)
    ]
    return Downloaded(settled, payload)


def log_kept(kept: dict[str, list[str]], log: Logger) -> None:
    """One line for every file kept, by how it was verified, each named: a line per file
    would be an event per file in Dagster's event log (an unchanged refresh writes them all)."""
    parts = [f"{how}: {', '.join(paths)}" for how, paths in kept.items() if paths]
    if parts:
        count = sum(len(paths) for paths in kept.values())
        log.info(
            f"{count} stored file{'s' if count > 1 else ''}: source unchanged and stored copy "
            f"verified ({'; '.join(parts)}); nothing to transfer"
        )
