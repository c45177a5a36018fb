"""Free space on a local root, checked before the first byte rather than discovered at 99 %."""

from __future__ import annotations

import shutil

from upath import UPath

from em_assets.storage.staging import is_local

# Room left for the manifest, the filesystem's own metadata and other writers.
MARGIN_BYTES = 16 * 1024 * 1024


class InsufficientSpaceError(OSError):
    """The storage root cannot hold what is about to be written."""


def require_free_space(directory: UPath, needed: int, what: str) -> None:
    """Fail, naming `what`, the bytes needed and the bytes free, when a local root is short.

    Object stores have no such limit to check; there the call does nothing.
    """
    if not is_local(directory) or needed <= 0:
        return
    probe = directory
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    free = shutil.disk_usage(probe.path).free
    if needed + MARGIN_BYTES > free:
        raise InsufficientSpaceError(
            f"{what}: {needed:,} bytes still to come but only {free:,} bytes free on "
            f"{probe.path} (keeping {MARGIN_BYTES:,} spare); free some space or point "
            "EM_ASSETS_ROOT at a larger disk"
        )


def out_of_space(error: BaseException, where: UPath, written: int) -> InsufficientSpaceError:
    """An ENOSPC raised mid-write, restated with the file and how far it got."""
    return InsufficientSpaceError(
        f"{where}: the disk filled up after {written:,} bytes ({error}); free some space or "
        "point EM_ASSETS_ROOT at a larger disk. The earlier copy, if any, is untouched"
    )
