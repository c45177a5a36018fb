"""Content statistics of a crop, accumulated block by block, and what counts as background.

Background is tissue-free volume: zero-filled padding or a flat field. It is judged on
small tiles rather than voxels, because a single dark voxel inside tissue is not background
but a whole tile with (almost) no variation is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TILE = 8
FLAT_RANGE = 3
"""A tile whose values span at most this many grey levels (JPEG ripple included) is flat."""


def background_voxels(block: np.ndarray, tile: int = TILE) -> int:
    """How many voxels of `block` lie in background tiles (flat or empty)."""
    if tile == TILE and all(n % tile == 0 for n in block.shape):
        return _whole_tiles_background(block)
    starts = [np.arange(0, n, tile) for n in block.shape]
    highs = block
    lows = block
    for axis, idx in enumerate(starts):
        highs = np.maximum.reduceat(highs, idx, axis=axis)
        lows = np.minimum.reduceat(lows, idx, axis=axis)
    flat = (highs.astype(np.int64) - lows.astype(np.int64)) <= FLAT_RANGE
    lengths = [np.diff(np.append(idx, n)) for idx, n in zip(starts, block.shape, strict=True)]
    counts = np.multiply.outer(np.multiply.outer(lengths[0], lengths[1]), lengths[2])
    return int(counts[flat].sum())


def _whole_tiles_background(block: np.ndarray) -> int:
    """`background_voxels` when tiles divide the block (copy blocks always are): tile
    extremes by halving each axis three times with element-wise max/min, about ten times
    faster than `reduceat` over the whole block (it dominated the copy's CPU time)."""
    highs = lows = block
    for axis in (2, 1, 0):
        for _ in range(TILE.bit_length() - 1):
            even = tuple(slice(0, None, 2) if a == axis else slice(None) for a in range(3))
            odd = tuple(slice(1, None, 2) if a == axis else slice(None) for a in range(3))
            highs = np.maximum(highs[even], highs[odd])
            lows = np.minimum(lows[even], lows[odd])
    flat = (highs.astype(np.int16) - lows.astype(np.int16)) <= FLAT_RANGE
    return int(flat.sum()) * TILE**3


def background_fraction(block: np.ndarray) -> float:
    return background_voxels(block) / block.size if block.size else 1.0


@dataclass
class RunningStatistics:
    """Min, max, mean and background fraction over blocks seen one at a time."""

    minimum: float = float("inf")
    maximum: float = float("-inf")
    total: float = 0.0
    count: int = 0
    background: int = 0

    def add(self, block: np.ndarray) -> None:
        if not block.size:
            return
        self.minimum = min(self.minimum, float(block.min()))
        self.maximum = max(self.maximum, float(block.max()))
        self.total += float(block.sum(dtype=np.float64))
        self.count += block.size
        self.background += background_voxels(block)

    def merge(self, other: RunningStatistics) -> None:
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)
        self.total += other.total
        self.count += other.count
        self.background += other.background

    def to_json(self) -> dict[str, float]:
        return {
            "minimum": self.minimum,
            "maximum": self.maximum,
            "total": self.total,
            "count": self.count,
            "background": self.background,
        }

    @classmethod
    def from_json(cls, document: dict[str, float]) -> RunningStatistics:
        return cls(
            minimum=document["minimum"],
            maximum=document["maximum"],
            total=document["total"],
            count=int(document["count"]),
            background=int(document["background"]),
        )

    def summary(self) -> dict[str, float]:
        return {
            "minimum": self.minimum,
            "maximum": self.maximum,
            "mean": self.total / self.count,
            "background_fraction": self.background / self.count,
        }
