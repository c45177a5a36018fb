"""The steps of making a crop: fitting the request, placing it, copying it into OME-Zarr,
and the manifest fields and thumbnail of the copy. The order they run in (reuse, place,
copy, describe) is the crop flow, `datasets/crop_flow.py`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from dagster import MetadataValue
from upath import UPath

from em_assets.crops.copy import CopyResult, copy_crop
from em_assets.crops.geometry import Box, Vec
from em_assets.crops.ome_zarr import ARRAY_NAME, ImageSpec, central_slice, create_image, stored_size
from em_assets.crops.placement import MAX_BACKGROUND, CandidateSearch, Placement
from em_assets.crops.resource import CropCopy
from em_assets.crops.statistics import coarse_background_fraction
from em_assets.crops.volume import VolumeLevel, corresponding_box, physical_offset, probe_level
from em_assets.logger import Logger
from em_assets.manifest.model import (
    ContentStatistics,
    CropInfo,
    FileEntry,
    Manifest,
    RejectedCandidate,
)
from em_assets.manifest.thumbnail import thumbnail_metadata
from em_assets.settings import ConfigurationError
from em_assets.storage import fingerprint
from em_assets.storage.orphans import remove_orphans

STORE_PREFIX = "crop-"
MAX_COPIES = 3
"""Copies a single-step crop may take before keeping the least empty one it copied."""


@dataclass(frozen=True)
class CropOutcome:
    placement: Placement
    copy: CopyResult
    store: UPath
    objects: int
    stored_bytes: int
    translation_nm: tuple[float, float, float]


def check_crop_fits(level: VolumeLevel, size: Vec, setting: str) -> None:
    """Refuse a crop that cannot fit, before any voxel is read, saying what would."""
    if any(s <= 0 for s in size):
        raise ConfigurationError(f"{setting} must be positive, got {size}")
    if any(size[i] > level.bounds.size[i] for i in range(3)):
        largest = min(level.bounds.size)
        raise ConfigurationError(
            f"{setting}={size[0]} does not fit {level.name}, which is "
            f"{level.bounds.size[0]} x {level.bounds.size[1]} x {level.bounds.size[2]} voxels "
            f"(x, y, z); use at most {largest}, or a finer level"
        )


def store_name(source_version: str, level: VolumeLevel, box: Box) -> str:
    """A name fixed by what the crop contains, so a new crop never overwrites the stored one."""
    key = f"{source_version}|{level.name}|{box.offset}|{box.size}"
    return f"{STORE_PREFIX}{hashlib.sha256(key.encode()).hexdigest()[:16]}.ome.zarr"


def stores_to_keep(previous: Manifest | None) -> set[str]:
    """The store the last manifest points to (still valid until the new manifest replaces
    it); any store being written now is created after the clean-up."""
    keep: set[str] = set()
    if previous is not None and previous.array_path:
        keep.add(previous.array_path.rsplit("/", 1)[-1])
    return keep


def remove_stale_stores(directory: UPath, keep: set[str], log: Logger) -> None:
    """Delete crop stores no manifest points to (left by superseded or failed runs), before
    copying, to free their space. Called only under the asset's lease, so no concurrent run
    is writing one of them."""
    if not directory.exists():
        return
    others = {child.name for child in directory.iterdir()}
    others = {name for name in others if not name.startswith(STORE_PREFIX)}
    remove_orphans(directory, keep | others, log)


def candidate_search(
    level: VolumeLevel, levels: list[VolumeLevel], size: Vec, seed: int, log: Logger
) -> CandidateSearch:
    """Seeded candidates judged on the coarsest level that still resolves them, voxel by
    voxel there (see `coarse_background_fraction` for why not by tiles)."""
    probe = probe_level(levels, level, size)
    factor = min(probe.voxel_size_nm[i] / level.voxel_size_nm[i] for i in range(3))

    def background_of(candidate: Box) -> float:
        block = probe.read(corresponding_box(level, candidate, probe))
        return coarse_background_fraction(block, factor)

    return CandidateSearch(
        level.bounds, level.chunk, size, seed, background_of, f"coarse probe ({probe.name})", log
    )


def place(
    level: VolumeLevel, levels: list[VolumeLevel], size: Vec, seed: int, log: Logger
) -> Placement:
    """The first candidate the probe accepts, or the least empty one (no copy confirms it)."""
    search = candidate_search(level, levels, size, seed, log)
    return search.next_accepted() or search.least_empty()


def place_and_copy(
    search: CandidateSearch, copy: Callable[[Placement], CropOutcome], log: Logger
) -> tuple[CropOutcome, list[CropOutcome]]:
    """Copy the probe's choice and confirm it at full resolution; while the copy is mostly
    background, reject it and copy the next accepted candidate, at most `MAX_COPIES` times.

    Returns the crop kept (the first confirmed one, else the least empty copy) and the
    copies that were rejected (their stores are to be removed).
    """
    placement = search.next_accepted() or search.least_empty()
    copies: list[CropOutcome] = []
    while True:
        outcome = copy(placement)
        copies.append(outcome)
        measured = background_of(outcome)
        if measured <= MAX_BACKGROUND or not placement.accepted:
            break
        log.warning(
            f"crop at {placement.box.offset} is {measured:.0%} background at full resolution "
            f"(the coarse probe estimated {placement.estimated_background:.0%}); placing again"
        )
        search.reject_after_copy(placement, measured)
        following = search.next_accepted() if len(copies) < MAX_COPIES else None
        if following is None:
            break
        placement = following
    kept = min(copies, key=background_of)
    note = full_resolution_note(background_of(kept), len(copies))
    rejected = tuple(r for r in search.rejected if r.box != kept.placement.box)
    kept = replace(
        kept,
        placement=replace(
            kept.placement,
            description=kept.placement.description + note,
            rejected=rejected,
        ),
    )
    return kept, [c for c in copies if c.placement.box != kept.placement.box]


def full_resolution_note(measured: float, copies: int | None) -> str:
    """What the copy's own statistic said, for the placement description; `copies` is how
    many crops were copied to find it (None: a partitioned crop, never copied again)."""
    if measured <= MAX_BACKGROUND:
        return f"; confirmed at full resolution ({measured:.0%} background)"
    if copies is None:
        return (
            f"; {measured:.0%} background at full resolution (a partitioned crop is not "
            "copied again)"
        )
    if copies == 1:
        return f"; {measured:.0%} background at full resolution"
    return f"; {measured:.0%} background at full resolution, the least of the {copies} crops copied"


def background_of(outcome: CropOutcome) -> float:
    """The crop's background fraction at full resolution, as its copy measured it."""
    return outcome.copy.statistics["background_fraction"]


def image_spec(level: VolumeLevel, placement: Placement, title: str) -> ImageSpec:
    box = placement.box
    return ImageSpec(
        name=title,
        shape_zyx=box.size[::-1],
        chunks_zyx=level.chunk[::-1],
        dtype=str(level.dtype),
        voxel_size_nm=level.voxel_size_nm,
        translation_nm=physical_offset(level, box.offset),
    )


def write_crop(
    level: VolumeLevel,
    placement: Placement,
    store: UPath,
    title: str,
    copier: CropCopy,
    log: Logger,
    label: str,
) -> CropOutcome:
    """Copy the placed crop into a new OME-Zarr image at `store`."""
    spec = image_spec(level, placement, title)
    output = create_image(store, spec)
    block = copier.block(level.chunk)
    result = copy_crop(
        level.read_counted, placement.box, level.chunk, block, output, log, label, copier.workers
    )
    return outcome_of(placement, result, store, spec)


def outcome_of(
    placement: Placement, result: CopyResult, store: UPath, spec: ImageSpec
) -> CropOutcome:
    objects, stored_bytes = stored_size(store)
    return CropOutcome(placement, result, store, objects, stored_bytes, spec.translation_nm)


def manifest_fields(
    outcome: CropOutcome, level: VolumeLevel, finest: VolumeLevel, root: UPath
) -> dict[str, Any]:
    """The manifest entries that describe a crop: its array, geometry and placement."""
    box = outcome.placement.box
    array_path = outcome.store.path.removeprefix(root.path).strip("/")
    shape = list(box.size[::-1])
    return {
        "axes": ["z", "y", "x"],
        "shape": shape,
        "dtype": str(level.dtype),
        "array_path": array_path,
        "files": [
            FileEntry(
                path=f"{array_path}/{ARRAY_NAME}",
                kind="zarr_array",
                bytes=outcome.stored_bytes,
                sha256=outcome.copy.content_digest,
                shape=shape,
                dtype=str(level.dtype),
                fingerprint=fingerprint.settled(outcome.store / ARRAY_NAME),
            )
        ],
        "crop": CropInfo(
            offset_voxels=list(box.offset),
            size_voxels=list(box.size),
            scale=level.name,
            seed=outcome.placement.seed,
            placement=outcome.placement.description,
            translation_nm=list(outcome.translation_nm),
            source_base_voxel_size_nm=list(finest.voxel_size_nm),
            chunk_count=outcome.copy.chunks,
            absent_chunks=outcome.copy.absent_chunks,
            statistics=ContentStatistics(**outcome.copy.statistics),
            rejected_candidates=[
                RejectedCandidate(
                    offset_voxels=list(rejection.box.offset),
                    background_fraction=rejection.background,
                    judged_on=rejection.judged_on,
                    reason=(
                        f"{rejection.background:.0%} background on the {rejection.judged_on}, "
                        f"over the {MAX_BACKGROUND:.0%} limit"
                    ),
                )
                for rejection in outcome.placement.rejected
            ],
        ),
    }


def thumbnail(manifest: Manifest, root: UPath) -> MetadataValue:
    """The crop's central z slice, for the UI."""
    assert manifest.array_path is not None
    store = root.joinpath(*manifest.array_path.split("/"))
    return thumbnail_metadata(central_slice(store), f"{manifest.array_path}, central z slice")
