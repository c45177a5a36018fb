"""Where a crop goes: seeded, on the source chunk grid, and not in empty padding.

The same seed and volume always give the same crop. Candidates are drawn on the chunk
grid (so blocks map onto whole chunks) and judged on a coarse level first, which costs a
few chunk reads instead of the crop itself. The coarse judgement is an estimate, so the
crop's own full-resolution statistic has the last word: a copied crop that is mostly
background is rejected and the search goes on from the next seeded candidate (a bounded
number of times). Every rejected candidate is kept, with the fraction that rejected it and
where that fraction was measured, for the manifest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from em_assets.crops.geometry import Box, Vec
from em_assets.logger import Logger

MAX_CANDIDATES = 32
MAX_BACKGROUND = 0.5
AFTER_COPY = "full resolution, after the copy"


@dataclass(frozen=True)
class Rejection:
    """A candidate that was not kept: where, how much background, and judged on what."""

    box: Box
    background: float
    judged_on: str


@dataclass(frozen=True)
class Placement:
    box: Box
    seed: int
    description: str
    estimated_background: float | None
    rejected: tuple[Rejection, ...] = ()
    accepted: bool = True
    """False when no candidate was under the limit and this is the least empty one."""


def grid_positions(bounds: Box, chunk: Vec, size: Vec) -> list[int]:
    """Per axis, how many chunk-grid starts leave room for the crop (at least one)."""
    return [max(0, (bounds.size[i] - size[i]) // chunk[i]) + 1 for i in range(3)]


def seeded_candidates(bounds: Box, chunk: Vec, size: Vec, seed: int, draws: int) -> Iterator[Box]:
    """Distinct chunk-grid boxes in the order `seed` draws them, from at most `draws` draws."""
    rng = np.random.default_rng(seed)
    counts = grid_positions(bounds, chunk, size)
    seen: set[Box] = set()
    for _ in range(draws):
        steps = [int(rng.integers(0, counts[i])) for i in range(3)]
        offset = (
            bounds.offset[0] + steps[0] * chunk[0],
            bounds.offset[1] + steps[1] * chunk[1],
            bounds.offset[2] + steps[2] * chunk[2],
        )
        candidate = Box(offset, size)
        if candidate not in seen:
            seen.add(candidate)
            yield candidate
        if len(seen) == counts[0] * counts[1] * counts[2]:
            return


@dataclass
class CandidateSearch:
    """Seeded candidates judged one at a time by `background_of` (the coarse probe, named by
    `probe`); a search can be resumed after a copied crop is rejected at full resolution."""

    bounds: Box
    chunk: Vec
    size: Vec
    seed: int
    background_of: Callable[[Box], float]
    probe: str
    log: Logger
    max_candidates: int = MAX_CANDIDATES
    max_background: float = MAX_BACKGROUND
    rejected: list[Rejection] = field(default_factory=list, init=False)
    _estimates: dict[Box, float] = field(default_factory=dict, init=False)
    _candidates: Iterator[Box] | None = field(default=None, init=False)

    def next_accepted(self) -> Placement | None:
        """The next candidate whose estimate is at most the limit; None when none is left."""
        if self._candidates is None:
            self._candidates = seeded_candidates(
                self.bounds, self.chunk, self.size, self.seed, self.max_candidates
            )
        for candidate in self._candidates:
            background = self.background_of(candidate)
            self._estimates[candidate] = background
            if background <= self.max_background:
                return Placement(
                    candidate,
                    self.seed,
                    f"seeded random position on the source chunk grid; candidate "
                    f"{len(self._estimates)} accepted ({background:.0%} background on the "
                    f"coarse probe, {len(self.rejected)} rejected as mostly background)",
                    background,
                    tuple(self.rejected),
                )
            self.rejected.append(Rejection(candidate, background, self.probe))
        return None

    def reject_after_copy(self, placement: Placement, measured: float) -> None:
        self.rejected.append(Rejection(placement.box, measured, AFTER_COPY))

    def least_empty(self) -> Placement:
        """When no candidate qualified on the probe: the one it estimated least empty."""
        box, background = min(self._estimates.items(), key=lambda item: item[1])
        tried = len(self._estimates)
        self.log.warning(
            f"no candidate of {tried} had at most {self.max_background:.0%} background; "
            f"using the least empty ({background:.0%})"
        )
        return Placement(
            box,
            self.seed,
            f"seeded random position on the source chunk grid; none of {tried} candidates was "
            f"under {self.max_background:.0%} background, so the least empty ({background:.0%}) "
            "was kept",
            background,
            tuple(r for r in self.rejected if r.box != box),
            accepted=False,
        )


def place_crop(
    bounds: Box,
    chunk: Vec,
    size: Vec,
    seed: int,
    background_of: Callable[[Box], float],
    log: Logger,
    max_candidates: int = MAX_CANDIDATES,
    max_background: float = MAX_BACKGROUND,
    probe: str = "coarse probe",
) -> Placement:
    """The first seeded candidate whose estimated background is at most `max_background`;
    if none qualifies, the least empty candidate, said so in the description."""
    search = CandidateSearch(
        bounds, chunk, size, seed, background_of, probe, log, max_candidates, max_background
    )
    return search.next_accepted() or search.least_empty()
