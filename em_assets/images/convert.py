"""One stack (and its label stacks) into one OME-Zarr image with a pyramid, streamed.

s0 is written one chunk layer at a time: planes are read in z order into a slab as deep as
a chunk, and the slab is written as whole chunks (no chunk is ever read back and rewritten).
The chunk depth is chosen so that a slab stays within `SLAB_BYTES`, which bounds memory for
any stack size: 32 planes of 1024 × 768, but one plane of a 5500 × 5500 EMPIAR slice.
Pyramid levels are then computed block by block from the level below (see `pyramid`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import zarr
from upath import UPath

from em_assets.crops.ome_zarr import (
    ImageSpec,
    add_levels,
    create_image,
    create_label,
    open_group,
)
from em_assets.images.planes import Planes
from em_assets.images.pyramid import (
    MAX_VOXELS_PER_AXIS,
    downsample_level,
    plan_levels,
    step_between,
)

SLAB_BYTES = 32 * 2**20
"""At most this many bytes of source planes are held at once (one chunk layer of s0)."""
MIN_CHUNK_BYTES = 2**19
"""Thin chunk layers get wider chunks, so a huge slice is not cut into thousands of objects."""
MAX_CHUNK_DEPTH = 64
BASE_CHUNK_XY = 128
MAX_CHUNK_XY = 1024
CONVERTER_VERSION = 1
"""Bump when the conversion's output changes, so stored images are converted again."""


RECORD_KEY = "em_assets"
"""Image attribute naming what it was converted from: written last, so its presence also
says the image is complete."""


class LabelShapeError(ValueError):
    """A label stack does not cover its image voxel for voxel."""


@dataclass(frozen=True)
class LabelSource:
    name: str
    planes: Planes
    path: str
    """The source file, relative to the storage root (for messages)."""


@dataclass(frozen=True)
class ImageSource:
    """What one image is made of: its planes, its labels, and the sources' digests."""

    name: str
    planes: Planes
    sources: dict[str, str]
    """Source path (relative to the root) -> sha256, image and labels alike."""
    labels: tuple[LabelSource, ...] = ()

    def record(self, voxel_size_nm: tuple[float, float, float]) -> dict[str, Any]:
        """What the stored image must say it was made from to be reused as it is."""
        return {
            "converter": CONVERTER_VERSION,
            "sources": dict(sorted(self.sources.items())),
            "voxel_size_nm": [float(v) for v in voxel_size_nm],
        }


def chunks_for(shape_zyx: tuple[int, int, int], dtype: np.dtype) -> tuple[int, int, int]:
    """Chunk shape (z, y, x): as deep as `SLAB_BYTES` of planes allows (a power of two, at
    most 64, so pyramid levels stay chunk-aligned), and wide enough that a chunk holds at
    least `MIN_CHUNK_BYTES`."""
    z, y, x = shape_zyx
    plane_bytes = max(1, y * x * dtype.itemsize)
    fits = max(1, min(MAX_CHUNK_DEPTH, SLAB_BYTES // plane_bytes))
    depth = min(1 << (fits.bit_length() - 1), z)
    side = BASE_CHUNK_XY
    while side < MAX_CHUNK_XY and depth * side * side * dtype.itemsize < MIN_CHUNK_BYTES:
        side *= 2
    return depth, max(1, min(side, y)), max(1, min(side, x))


def write_image(
    path: UPath,
    source: ImageSource,
    voxel_size_nm: tuple[float, float, float],
    title: str,
    limit: int = MAX_VOXELS_PER_AXIS,
) -> None:
    """Write the image (every level), then its labels, then the record that completes it."""
    planes = source.planes
    spec = ImageSpec(
        name=f"{title}: {source.name}",
        shape_zyx=planes.shape_zyx,
        chunks_zyx=chunks_for(planes.shape_zyx, planes.dtype),
        dtype=str(planes.dtype),
        voxel_size_nm=voxel_size_nm,
        translation_nm=(0.0, 0.0, 0.0),
    )
    levels = plan_levels(planes.shape_zyx, voxel_size_nm, limit)
    s0 = create_image(path, spec)
    _write_planes(s0, planes)
    _write_pyramid(open_group(path, "a"), spec, s0, levels, label=False)
    for label in source.labels:
        if label.planes.shape_zyx != planes.shape_zyx:
            raise LabelShapeError(
                f"{label.path} is {label.planes.shape_zyx} (z, y, x) but its image "
                f"{source.name} is {planes.shape_zyx}; a label must cover its image exactly"
            )
        label_spec = replace(
            spec,
            name=label.name,
            dtype=str(label.planes.dtype),
            chunks_zyx=chunks_for(planes.shape_zyx, label.planes.dtype),
        )
        array = create_label(path, label.name, label_spec)
        _write_planes(array, label.planes)
        group = open_group(path / "labels" / label.name, "a")
        _write_pyramid(group, label_spec, array, levels, label=True)
    open_group(path, "a").attrs[RECORD_KEY] = source.record(voxel_size_nm)


def _write_planes(array: zarr.Array, planes: Planes) -> None:
    """s0 from the planes, one chunk layer (slab) at a time."""
    depth = array.chunks[0]
    slab = np.empty((depth, *planes.shape_zyx[1:]), dtype=planes.dtype)
    filled, start = 0, 0
    for plane in planes:
        slab[filled] = plane
        filled += 1
        if filled == depth:
            _write_slab(array, start, slab)
            start, filled = start + filled, 0
    if filled:
        _write_slab(array, start, slab[:filled])
    if start + filled != planes.shape_zyx[0]:
        raise EOFError(
            f"{planes.paths[0]}: {start + filled} planes read, {planes.shape_zyx[0]} expected"
        )


def _write_slab(array: zarr.Array, start: int, slab: np.ndarray) -> None:
    """Whole chunks, one row of chunks at a time: zarr copies and compresses everything a
    write covers at once, so a row bounds that to a fraction of the slab."""
    rows = array.chunks[1]
    for y in range(0, slab.shape[1], rows):
        array[start : start + len(slab), y : y + rows] = slab[:, y : y + rows]


def _write_pyramid(
    group: zarr.Group,
    spec: ImageSpec,
    s0: zarr.Array,
    levels: list[tuple[tuple[int, int, int], tuple[int, int, int]]],
    label: bool,
) -> None:
    if not levels:
        return
    arrays = add_levels(group, spec, [shape for shape, _ in levels], [f for _, f in levels])
    finer, previous = s0, (1, 1, 1)
    for array, (_, factors) in zip(arrays, levels, strict=True):
        downsample_level(finer, array, step_between(previous, factors), label)
        finer, previous = array, factors
