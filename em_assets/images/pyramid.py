"""Pyramid levels of a stored image, computed block by block from the level below.

Each output chunk is computed from the input region it covers (at most 2 × 2 × 2 input
chunks, each read once in total), so memory is bounded by a few chunks whatever the size
of the image. Images are averaged (2× mean, rounded to the nearest integer for integer
types); labels are subsampled (the first voxel of every 2 × 2 × 2 block, i.e. nearest
neighbour): averaging label ids would invent ids that do not exist.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import zarr

from em_assets.crops.ome_zarr import Factors

MAX_VOXELS_PER_AXIS = 512
"""Levels are added until every axis is at most this long: viewers stay quick."""

ZYX = tuple[int, int, int]


def plan_levels(
    shape_zyx: ZYX, voxel_size_nm: tuple[float, float, float], limit: int = MAX_VOXELS_PER_AXIS
) -> list[tuple[ZYX, Factors]]:
    """Shape (z, y, x) and cumulative factors (x, y, z) of every level after s0.

    An axis is halved only while it is not already much coarser than the finest one, so an
    anisotropic stack (8 × 8 × 50 nm) first becomes more isotropic instead of losing its
    few z sections; an axis of one voxel stays as it is.
    """
    levels: list[tuple[ZYX, Factors]] = []
    shape = list(shape_zyx[::-1])  # x, y, z from here on
    voxel = list(voxel_size_nm)
    cumulative = [1, 1, 1]
    while max(shape) > limit:
        finest = min(voxel[i] for i in range(3) if shape[i] > 1)
        step = [2 if shape[i] > 1 and voxel[i] < 2 * finest else 1 for i in range(3)]
        shape = [-(-shape[i] // step[i]) for i in range(3)]
        voxel = [voxel[i] * step[i] for i in range(3)]
        cumulative = [cumulative[i] * step[i] for i in range(3)]
        levels.append(
            ((shape[2], shape[1], shape[0]), (cumulative[0], cumulative[1], cumulative[2]))
        )
    return levels


def step_between(finer: Factors, coarser: Factors) -> ZYX:
    """The z, y, x factor from one level to the next."""
    return (coarser[2] // finer[2], coarser[1] // finer[1], coarser[0] // finer[0])


def downsample_level(source: zarr.Array, target: zarr.Array, step_zyx: ZYX, label: bool) -> None:
    """Fill `target` from `source`, one target chunk at a time."""
    for region in chunk_regions(target.shape, target.chunks):  # type: ignore[arg-type]  # 3-D; zarr says tuple[int, ...]
        inner = tuple(
            slice(r.start * f, min(r.stop * f, n))
            for r, f, n in zip(region, step_zyx, source.shape, strict=True)
        )
        block = np.asarray(source[inner])
        target[region] = subsample(block, step_zyx) if label else mean(block, step_zyx)


def chunk_regions(shape: ZYX, chunks: ZYX) -> Iterator[tuple[slice, slice, slice]]:
    """Every chunk of an array of `shape` as a region, in chunk order."""
    ranges = [range(0, n, c) for n, c in zip(shape, chunks, strict=True)]
    for start in itertools.product(*ranges):
        yield tuple(  # type: ignore[misc]  # a tuple(<generator>) over three axes
            slice(s, min(s + c, n)) for s, c, n in zip(start, chunks, shape, strict=True)
        )


def subsample(block: np.ndarray, step_zyx: ZYX) -> np.ndarray:
    return block[:: step_zyx[0], :: step_zyx[1], :: step_zyx[2]]


def mean(block: np.ndarray, step_zyx: ZYX) -> np.ndarray:
    """Mean of every step-sized block; an odd edge repeats its last voxel (edge padding),
    so the last output voxel is the mean of what exists rather than darkened by zeros."""
    padding = [(0, (-n) % f) for n, f in zip(block.shape, step_zyx, strict=True)]
    if any(after for _, after in padding):
        block = np.pad(block, padding, mode="edge")
    integer = np.issubdtype(block.dtype, np.integer)
    shape = tuple(n // f for n, f in zip(block.shape, step_zyx, strict=True))
    total = np.zeros(shape, dtype=np.int64 if integer else np.float64)
    for dz, dy, dx in itertools.product(*(range(f) for f in step_zyx)):
        total += block[dz :: step_zyx[0], dy :: step_zyx[1], dx :: step_zyx[2]]
    count = step_zyx[0] * step_zyx[1] * step_zyx[2]
    if integer:
        return ((total + count // 2) // count).astype(block.dtype)
    return (total / count).astype(block.dtype)
