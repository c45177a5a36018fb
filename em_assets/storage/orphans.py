"""What a successful run leaves under `{root}/{asset}/`: exactly what its manifest names.

Files dropped from the run config, crop stores of earlier placements, staging files of
failed attempts and anything planted there (links included) would otherwise stay forever
and be mistaken for part of the dataset. Clean-up runs only under the asset's lease, after
the new manifest is stored, so it can never remove what a concurrent run is writing or
what the stored manifest still points to.
"""

from __future__ import annotations

import os
import shutil

from upath import UPath

from em_assets.logger import Logger
from em_assets.manifest.model import Manifest
from em_assets.storage.staging import is_local


def named_entries(manifest: Manifest) -> set[str]:
    """The names directly under `{root}/{dataset}/` that the manifest's paths go through."""
    prefix = f"{manifest.dataset}/"
    paths = [entry.path for entry in manifest.files]
    if manifest.array_path:
        paths.append(manifest.array_path)
    paths.extend(image.path for image in manifest.images)
    return {path[len(prefix) :].split("/", 1)[0] for path in paths if path.startswith(prefix)}


def remove_orphans(directory: UPath, keep: set[str], log: Logger) -> list[str]:
    """Delete every entry of `directory` not in `keep` (links themselves, never their
    targets); the names removed, each also logged."""
    removed: list[str] = []
    if is_local(directory):
        if not os.path.isdir(directory.path) or os.path.islink(directory.path):
            return removed
        with os.scandir(directory.path) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.name in keep:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                removed.append(entry.name)
    else:
        if not directory.exists():
            return removed
        for child in sorted(directory.iterdir(), key=lambda c: c.name):
            if child.name and child.name not in keep:
                child.fs.rm(child.path, recursive=True)
                removed.append(child.name)
    for name in removed:
        log.info(f"removed {directory}/{name}: not part of the stored manifest")
    return removed
