"""Where a crop goes: seeded, on the source chunk grid, and not in empty padding.

The same seed and volume always give the same crop. Candidates are drawn on the chunk
grid (so blocks map onto whole chunks) and judged on a coarse level first, which costs a
few chunk reads instead of the crop itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from em_assets.crops.geometry import Box, Vec
from em_assets.transfer.progress import Logger

MAX_CANDIDATES = 32
MAX_BACKGROUND = 0.5


@dataclass(frozen=True)
class Placement:
    box: Box
    seed: int
    description: str
    estimated_background: float | None


def grid_positions(bounds: Box, chunk: Vec, size: Vec) -> list[int]:
    """Per axis, how many chunk-grid starts leave room for the crop (at least one)."""
    return [max(0, (bounds.size[i] - size[i]) // chunk[i]) + 1 for i in range(3)]


def place_crop(
    bounds: Box,
    chunk: Vec,
    size: Vec,
    seed: int,
    background_of: Callable[[Box], float],
    log: Logger,
    max_candidates: int = MAX_CANDIDATES,
    max_background: float = MAX_BACKGROUND,
) -> Placement:
    """The first seeded candidate whose estimated background is at most `max_background`;
    if none qualifies, the least empty candidate, said so in the description."""
    rng = np.random.default_rng(seed)
    counts = grid_positions(bounds, chunk, size)
    best: tuple[float, Box] | None = None
    tried = 0
    for tried in range(1, max_candidates + 1):
        steps = [int(rng.integers(0, counts[i])) for i in range(3)]
        offset = (
            bounds.offset[0] + steps[0] * chunk[0],
            bounds.offset[1] + steps[1] * chunk[1],
            bounds.offset[2] + steps[2] * chunk[2],
        )
        candidate = Box(offset, size)
        background = background_of(candidate)
        if best is None or background < best[0]:
            best = (background, candidate)
        if background <= max_background:
            return Placement(
                candidate,
                seed,
                f"seeded random position on the source chunk grid; candidate {tried} "
                f"accepted ({background:.0%} background on the coarse probe, "
                f"{tried - 1} rejected as mostly background)",
                background,
            )
        if counts == [1, 1, 1]:
            break
    assert best is not None
    log.warning(
        f"no candidate of {tried} had at most {max_background:.0%} background; "
        f"using the least empty ({best[0]:.0%})"
    )
    return Placement(
        best[1],
        seed,
        f"seeded random position on the source chunk grid; none of {tried} candidates was "
        f"under {max_background:.0%} background, so the least empty ({best[0]:.0%}) was kept",
        best[0],
    )
