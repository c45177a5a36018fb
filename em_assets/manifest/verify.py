"""Does storage still hold what a manifest says? Used by the blocking asset checks."""

from __future__ import annotations

from upath import UPath

from em_assets.manifest.model import FileEntry, Manifest
from em_assets.storage.root import child_path
from em_assets.transfer.engine import sha256_of


def stored_path(root: UPath, entry: FileEntry) -> UPath:
    """The stored location of a manifest entry (paths are relative to the root)."""
    path = root
    for part in entry.path.split("/"):
        path = child_path(path, part)
    return path


def file_problems(root: UPath, manifest: Manifest) -> list[str]:
    """Every way the stored files differ from the manifest; empty when they all match."""
    problems = []
    for entry in manifest.files:
        path = stored_path(root, entry)
        if not path.exists():
            problems.append(f"{entry.path}: missing")
            continue
        size = path.fs.size(path.path)
        if size != entry.bytes:
            problems.append(f"{entry.path}: {size} bytes, manifest says {entry.bytes}")
        elif sha256_of(path) != entry.sha256:
            problems.append(f"{entry.path}: sha256 differs from the manifest")
    return problems
