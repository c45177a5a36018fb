"""A file dataset's images: convert what changed, keep what did not, list them all.

Called by each file dataset right after its download, under the asset's lease, so no other
run writes these images meanwhile. An image is converted again only when one of its source
files' sha256 (or the voxel size, or the converter) changed: an unchanged refresh reads one
small attribute per image and writes nothing.
"""

from __future__ import annotations

import time
from functools import partial

from em_assets.images.convert import ImageSource, write_image
from em_assets.images.describe import describe_image, relative_path
from em_assets.images.store import is_current, publish, store_name
from em_assets.logger import Logger
from em_assets.manifest.model import ImageEntry
from em_assets.storage.root import StorageRoot, child_path


def build_images(
    storage: StorageRoot,
    asset: str,
    sources: list[ImageSource],
    voxel_size_nm: list[float] | tuple[float, ...],
    title: str,
    log: Logger,
) -> list[ImageEntry]:
    root, directory = storage.base(), storage.dataset_dir(asset)
    voxel = (float(voxel_size_nm[0]), float(voxel_size_nm[1]), float(voxel_size_nm[2]))
    entries = []
    for source in sources:
        record = source.record(voxel)
        path = child_path(directory, store_name(directory, source.name, record))
        where = relative_path(root, path)
        if is_current(path, record):
            log.info(f"{where}: its sources are unchanged since converted; kept as it is")
        else:
            started = time.monotonic()
            publish(
                directory,
                path.name,
                partial(write_image, source=source, voxel_size_nm=voxel, title=title),
            )
            log.info(
                f"{where}: converted {_files(sorted(source.sources))} to OME-Zarr in "
                f"{time.monotonic() - started:.1f} s"
            )
        entries.append(describe_image(root, path, source.name))
    return entries


def _files(paths: list[str]) -> str:
    """A few paths in full; a thousand slices as a count and their range."""
    if len(paths) <= 3:
        return " + ".join(paths)
    return f"{len(paths)} files ({paths[0]} … {paths[-1]})"
