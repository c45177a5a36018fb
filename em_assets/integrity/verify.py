"""Does storage still hold what a manifest says? Used by the blocking asset checks and by the
crop assets' reuse check.

An entry whose recorded fingerprint is unchanged and trustworthy is trusted without reading
(see `storage.fingerprint`); any other entry, or every entry with `deep=True`, is verified by
content: the file re-hashed, the array's voxels re-digested.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from upath import UPath

from em_assets.crops.copy import stored_digest
from em_assets.crops.ome_zarr import open_image
from em_assets.manifest.model import FileEntry, Manifest
from em_assets.storage import fingerprint
from em_assets.storage.paths import stored_path
from em_assets.transfer.engine import sha256_of


def _file_problems(path: UPath, entry: FileEntry) -> list[str]:
    size = path.fs.size(path.path)
    if size != entry.bytes:
        return [f"{entry.path}: {size} bytes, manifest says {entry.bytes}"]
    if sha256_of(path) != entry.sha256:
        return [f"{entry.path}: sha256 differs from the manifest"]
    return []


# What codecs raise on damaged chunks (blosc and zstd: RuntimeError; gzip: zlib.error, ...).
_UNREADABLE = (RuntimeError, ValueError, OSError, EOFError, KeyError, zlib.error)


def _array_problems(path: UPath, entry: FileEntry) -> list[str]:
    try:
        return _array_differences(path, entry)
    except _UNREADABLE as error:
        return [f"{entry.path}: unreadable ({type(error).__name__}: {error})"]


def _array_differences(path: UPath, entry: FileEntry) -> list[str]:
    _, array = open_image(path.parent)
    problems = []
    if entry.shape is not None and list(array.shape) != entry.shape:
        problems.append(f"{entry.path}: shape {list(array.shape)}, manifest says {entry.shape}")
    if entry.dtype is not None and str(array.dtype) != entry.dtype:
        problems.append(f"{entry.path}: dtype {array.dtype}, manifest says {entry.dtype}")
    z, y, x = array.chunks
    if not problems and stored_digest(array, (x, y, z)) != entry.sha256:
        problems.append(f"{entry.path}: voxel content differs from the manifest's digest")
    return problems


@dataclass
class Verification:
    """What a verification found, and the entries as they should now be recorded (with the
    fingerprints taken around any full verification that passed)."""

    problems: list[str] = field(default_factory=list)
    entries: list[FileEntry] = field(default_factory=list)
    trusted_paths: set[str] = field(default_factory=set)
    """Entries decided by an unchanged fingerprint, without reading content."""
    read: int = 0
    """Entries verified by reading their content."""

    @property
    def trusted(self) -> int:
        return len(self.trusted_paths)


def verify_files(root: UPath, manifest: Manifest, deep: bool = False) -> Verification:
    """Check every stored file or array of `manifest` (see the module doc for how)."""
    result = Verification()
    for entry in manifest.files:
        path = stored_path(root, entry)
        if not deep and fingerprint.unchanged(entry.fingerprint, path):
            result.trusted_paths.add(entry.path)
            result.entries.append(entry)
            continue
        if not path.exists():
            result.problems.append(f"{entry.path}: missing")
            result.entries.append(entry.model_copy(update={"fingerprint": None}))
            continue
        problems: list[str] = []
        verify = _array_problems if entry.kind == "zarr_array" else _file_problems

        def content_matches(path=path, entry=entry, verify=verify, problems=problems) -> bool:
            problems.extend(verify(path, entry))
            return not problems

        passed, taken = fingerprint.around(path, content_matches)
        result.read += 1
        result.problems.extend(problems)
        result.entries.append(entry.model_copy(update={"fingerprint": taken if passed else None}))
    return result


def file_problems(root: UPath, manifest: Manifest, deep: bool = False) -> list[str]:
    """Every way the stored files or arrays differ from the manifest; empty when all match."""
    return verify_files(root, manifest, deep).problems
