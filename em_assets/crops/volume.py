"""What a crop needs from a source volume, whatever its format (precomputed, OME-Zarr)."""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from em_assets.crops.geometry import Box, Vec

Nanometres = tuple[float, float, float]


class VolumeLevel(Protocol):
    """One resolution level of a chunked volume, addressed in voxels of that level (x, y, z).

    `translation_nm` is the physical position of voxel index (0, 0, 0); physical position
    of voxel v is `translation_nm + v * voxel_size_nm`.
    """

    name: str
    bounds: Box
    chunk: Vec
    voxel_size_nm: Nanometres
    translation_nm: Nanometres
    dtype: np.dtype

    def read(self, box: Box) -> np.ndarray:
        """The voxels of `box` as a z, y, x array; raises rather than inventing missing data.

        Chunks the format marks as never written read as its fill value."""
        ...

    def read_counted(self, box: Box) -> tuple[np.ndarray, int]:
        """`read`, and how many source chunks in `box` were never written (fill value)."""
        ...


def physical_offset(level: VolumeLevel, voxel: Vec) -> Nanometres:
    (tx, ty, tz), (sx, sy, sz) = level.translation_nm, level.voxel_size_nm
    return (tx + voxel[0] * sx, ty + voxel[1] * sy, tz + voxel[2] * sz)


def corresponding_box(source: VolumeLevel, box: Box, target: VolumeLevel) -> Box:
    """The box of `target` covering the same physical region as `box` of `source`."""
    start = physical_offset(source, box.offset)
    stop = physical_offset(source, box.end)
    low = [
        math.floor((start[i] - target.translation_nm[i]) / target.voxel_size_nm[i])
        for i in range(3)
    ]
    high = [
        math.ceil((stop[i] - target.translation_nm[i]) / target.voxel_size_nm[i]) for i in range(3)
    ]
    bounds = target.bounds
    low = [min(max(low[i], bounds.offset[i]), bounds.end[i] - 1) for i in range(3)]
    high = [min(max(high[i], low[i] + 1), bounds.end[i]) for i in range(3)]
    return Box((low[0], low[1], low[2]), (high[0] - low[0], high[1] - low[1], high[2] - low[2]))


def probe_level(
    levels: list[VolumeLevel], fine: VolumeLevel, crop_size: Vec, min_voxels: int = 16
) -> VolumeLevel:
    """The coarsest level on which a crop of `crop_size` (fine voxels) still spans
    `min_voxels` per axis: cheap to read (one or a few chunks), yet detailed enough to tell
    tissue from padding. Judged voxel by voxel there, the estimate can be off by about one
    coarse voxel's share of the crop at a tissue edge: 16 voxels keep that near 0.05, where
    8 let it reach 0.15 (measured on the replicas, see `crops/statistics.py`)."""
    best = fine
    for level in levels:
        ratios = [fine.voxel_size_nm[i] / level.voxel_size_nm[i] for i in range(3)]
        spans = [crop_size[i] * ratios[i] for i in range(3)]
        coarser = level.voxel_size_nm[0] > best.voxel_size_nm[0]
        if coarser and min(spans) >= min_voxels:
            best = level
    return best
