"""Where a converted image lives, whether it is current, and how it gets there complete.

On a filesystem an image is written under a staging name beside its place
(`.{name}.{token}.part`) and renamed into place only when complete, so a reader or a crash
never leaves half an image at `{name}.ome.zarr`. An object store has no rename (a "move" is
a copy of every object), so there an image is written under a name fixed by what it is made
of, `{name}-{digest}.ome.zarr`, the way crops name their stores: a new conversion never
touches the image the stored manifest points to, the new manifest switches to it, and the
superseded store is removed with the other orphans once that manifest is stored (see
`storage.orphans`). Either way the image's record (written last) says it is complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from upath import UPath

from em_assets.crops.ome_zarr import open_group
from em_assets.images.convert import RECORD_KEY
from em_assets.storage.root import child_path
from em_assets.storage.staging import is_local

SUFFIX = ".ome.zarr"


def store_name(directory: UPath, name: str, record: dict[str, Any]) -> str:
    """`{name}.ome.zarr` on a filesystem; `{name}-{digest}.ome.zarr` elsewhere."""
    if is_local(directory):
        return f"{name}{SUFFIX}"
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return f"{name}-{hashlib.sha256(canonical.encode()).hexdigest()[:16]}{SUFFIX}"


def is_current(path: UPath, record: dict[str, Any]) -> bool:
    """The image at `path` is complete and was made from exactly these sources."""
    try:
        return open_group(path).attrs.get(RECORD_KEY) == record
    except (FileNotFoundError, KeyError, ValueError, OSError):
        return False


def publish(directory: UPath, name: str, write: Callable[[UPath], None]) -> UPath:
    """Run `write(path)` so that `{directory}/{name}` only ever holds a complete image."""
    final = child_path(directory, name)
    if not is_local(directory):
        if final.exists():  # a leftover of a failed attempt at this very content
            final.fs.rm(final.path, recursive=True)
        write(final)
        return final
    directory.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(6)
    staging = directory / f".{name}.{token}.part"  # `final` was checked; these derive from it
    try:
        write(staging)
    except BaseException:
        _remove(staging.path)
        raise
    _replace(staging.path, final.path, (directory / f".{name}.{token}.old").path)
    return final


def _replace(staging: str, final: str, aside: str) -> None:
    """Move the staged image into place. A directory cannot be renamed over a non-empty
    one, so the old image is first moved aside (readers see no image for that instant,
    never a mixture) and removed after."""
    if os.path.lexists(final):
        os.rename(final, aside)
        os.rename(staging, final)
        _remove(aside)
    else:
        os.rename(staging, final)


def _remove(path: str) -> None:
    """Delete a directory tree, or a file or link itself (never what a link points to)."""
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
        return
    with suppress(FileNotFoundError):
        shutil.rmtree(path)
