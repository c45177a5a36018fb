"""Boxes of voxels and the chunk-aligned blocks a crop is copied in.

Everything here is in x, y, z order (how EM volumes are addressed and how the manifest
records crops); arrays are z, y, x, and the conversion happens where arrays are touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

Vec = tuple[int, int, int]


def add(a: Vec, b: Vec) -> Vec:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def sub(a: Vec, b: Vec) -> Vec:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


@dataclass(frozen=True)
class Box:
    """A half-open box of voxels: `offset` <= v < `offset + size`, per axis x, y, z."""

    offset: Vec
    size: Vec

    @property
    def end(self) -> Vec:
        return add(self.offset, self.size)

    def relative_to(self, origin: Vec) -> Box:
        return Box(sub(self.offset, origin), self.size)

    def zyx_slices(self) -> tuple[slice, slice, slice]:
        """Index expression for a z, y, x array whose voxel (0, 0, 0) is at the origin."""
        (x0, y0, z0), (x1, y1, z1) = self.offset, self.end
        return (slice(z0, z1), slice(y0, y1), slice(x0, x1))


def blocks(crop: Box, block: Vec) -> Iterator[Box]:
    """Tile `crop` with boxes of at most `block` voxels, starting at the crop's offset.

    With the crop on the source chunk grid and `block` a multiple of the chunk size,
    every block covers whole source chunks and whole output chunks, so blocks can be
    copied independently (in any order, by any worker) without sharing a chunk.
    """
    x_starts, y_starts, z_starts = (range(crop.offset[i], crop.end[i], block[i]) for i in range(3))
    for z in z_starts:
        for y in y_starts:
            for x in x_starts:
                start = (x, y, z)
                end = (
                    min(x + block[0], crop.end[0]),
                    min(y + block[1], crop.end[1]),
                    min(z + block[2], crop.end[2]),
                )
                yield Box(start, sub(end, start))


def block_shape(chunk: Vec, target_voxels: int) -> Vec:
    """Whole chunks per block, doubling along x, y, z in turn while under `target_voxels`."""
    counts = [1, 1, 1]
    axis = 0
    while True:
        counts[axis] *= 2
        size = (chunk[0] * counts[0], chunk[1] * counts[1], chunk[2] * counts[2])
        if size[0] * size[1] * size[2] > target_voxels:
            counts[axis] //= 2
            return (chunk[0] * counts[0], chunk[1] * counts[1], chunk[2] * counts[2])
        axis = (axis + 1) % 3
