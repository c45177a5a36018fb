"""The crop flow, shared by every crop dataset: open the source, reuse or place and copy,
then the manifest and its materialization.

A crop dataset module supplies only what is its own: how to open its source (and what
that source says about itself) and its documented facts. Everything else, single step or
partitioned across machines, goes through here, so both paths give the same manifest,
with one exception: only the single step copies again when its copy turns out mostly
background at full resolution (partitions cannot see the whole crop's statistic before
they are assembled); the assembled crop's WARN check says so instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    MaterializeResult,
    MetadataValue,
    asset_check,
)
from upath import UPath

from em_assets.crops import steps
from em_assets.crops.copy import CopiedBlocks, copy_blocks, result_of
from em_assets.crops.geometry import Box, Vec, blocks
from em_assets.crops.labels import LabelSource, copy_labels, labels_current, with_labels
from em_assets.crops.neuroglancer import crop_state, link
from em_assets.crops.ome_zarr import ensure_image
from em_assets.crops.placement import MAX_BACKGROUND, Placement, Rejection
from em_assets.crops.resource import CropCopy
from em_assets.crops.volume import VolumeLevel
from em_assets.images.describe import describe_image
from em_assets.integrity.checks import (
    agrees_with_documentation,
    recorded_manifest,
    stored_data_intact,
)
from em_assets.integrity.verify import verify_files
from em_assets.logger import Logger
from em_assets.manifest.materialization import materialization, settle
from em_assets.manifest.metadata import format_voxel_size
from em_assets.manifest.model import (
    CropInfo,
    DatasetFacts,
    FileEntry,
    LabelInfo,
    Manifest,
    SourceDocument,
    build_manifest,
)
from em_assets.refresh.verification import VerifiedConfig, deep_requested
from em_assets.storage.root import StorageRoot


@dataclass(frozen=True)
class CropSource:
    """An opened source volume, the crop asked of it, and where its values come from."""

    level: VolumeLevel
    levels: list[VolumeLevel]
    version: str
    size: Vec
    seed: int
    run_config: dict[str, Any]
    voxel_size_source: str
    source_urls: list[str]
    provenance: dict[str, str]
    metadata: dict[str, MetadataValue] = field(default_factory=dict)
    labels: list[LabelSource] = field(default_factory=list)
    """Label layers to store with the crop, aligned to it (NGFF labels)."""
    placement: Placement | None = None
    """A crop fixed by the request (e.g. around a ground-truth crop) instead of a seeded one."""
    viewer_source: str | None = None
    """The source volume as a Neuroglancer layer source (`precomputed://…`, `zarr://…`)."""
    document: SourceDocument | None = None
    """The source's metadata document, recorded by digest (see `refresh.source_document`)."""


@dataclass(frozen=True)
class CropDataset:
    name: str
    facts: DatasetFacts
    open: Callable[..., CropSource]
    """(source resource, run config) -> CropSource; validates the request first."""
    config: type[VerifiedConfig]
    """The run config of the crop (every step of a partitioned crop gets the same)."""
    source_key: str
    """The resource key of the source volume `open` takes."""
    check_prefix: str
    """The prefix of the crop's check names (`{prefix}_crop_intact`, …)."""
    finest_level_source: str
    """Where the source states its finest voxel size (shown by the documented-size check)."""


class PartitionMismatchError(RuntimeError):
    """The partitions of one crop do not describe the same crop."""


def materialize_crop(
    dataset: CropDataset,
    source: CropSource,
    storage: StorageRoot,
    copier: CropCopy,
    log: Logger,
    deep: bool = False,
    earlier_thumbnail: Callable[[str], MetadataValue | None] = lambda content_version: None,
) -> MaterializeResult:
    """The single-step crop: reuse the stored one if it still holds (by fingerprint, or
    re-digested with `deep`), else place and copy. `earlier_thumbnail(content_version)`
    gives the thumbnail already shown for that content, if any, so a reused crop is not
    read to draw it again."""
    root = storage.base()
    previous = storage.stored_manifest(dataset.name, log)
    kept = reusable_crop(
        previous, source.version, source.level, source.size, source.seed, root, log, deep
    )
    if kept is not None and labels_current(kept, source.labels):
        kept = with_views(kept, dataset, source, root).model_copy(
            update={"source_document": source.document}
        )
        shown = earlier_thumbnail(kept.content_version()) or steps.thumbnail(kept, root)
        return materialization(
            *settle(kept, previous),
            payload_bytes=0,
            thumbnail=shown,
            check_results=crop_check_results(dataset, kept),
        )
    directory = storage.dataset_dir(dataset.name)
    keep = steps.stores_to_keep(previous)
    steps.remove_stale_stores(directory, keep, log)

    def copy(placement: Placement) -> steps.CropOutcome:
        store = directory / steps.store_name(source.version, source.level, placement.box)
        return steps.write_crop(
            source.level, placement, store, dataset.facts.title, copier, log, dataset.name
        )

    if source.placement is not None:  # the request fixes the crop: nothing to search
        outcome = copy(source.placement)
    else:
        search = steps.candidate_search(source.level, source.levels, source.size, source.seed, log)
        outcome, rejected = steps.place_and_copy(search, copy, log)
        for copied in (c for c in rejected if c.store.name not in keep):
            log.info(f"removing the rejected crop store {copied.store}")
            copied.store.fs.rm(copied.store.path, recursive=True)
    labels = copy_labels(
        source.labels, source.level, outcome.placement.box, outcome.store, root, copier, log,
        dataset.name,
    )  # fmt: skip
    return crop_materialization(dataset, source, outcome, storage, previous, labels)


def reusable_crop(
    previous: Manifest | None,
    source_version: str,
    level: VolumeLevel,
    size: Vec,
    seed: int,
    root: UPath,
    log: Logger,
    deep: bool = False,
) -> Manifest | None:
    """The stored crop, if it was cut from this source version with this request and still
    reads back exactly (shape, dtype, voxel digest): by an unchanged fingerprint, else (or
    with `deep`) re-digested, in which case the fingerprint is taken afresh. Placement
    depends only on the seed and the source, so the same request would land in the same
    place: nothing to transfer."""
    crop = previous.crop if previous else None
    if (
        previous is None
        or crop is None
        or previous.source_version != source_version
        or (crop.scale, crop.size_voxels, crop.seed) != (level.name, list(size), seed)
    ):
        return None
    verification = verify_files(root, previous, deep)
    if verification.problems:
        log.warning(
            f"stored crop no longer matches its manifest ({'; '.join(verification.problems)}); "
            "copying again"
        )
        return None
    return previous.model_copy(update={"files": verification.entries})


def place(source: CropSource, log: Logger) -> Placement:
    """The crop the request fixes, else the seeded placement."""
    if source.placement is not None:
        return source.placement
    return steps.place(source.level, source.levels, source.size, source.seed, log)


def crop_materialization(
    dataset: CropDataset,
    source: CropSource,
    outcome: steps.CropOutcome,
    storage: StorageRoot,
    previous: Manifest | None,
    labels: tuple[list[LabelInfo], list[FileEntry]] | None = None,
) -> MaterializeResult:
    """The manifest of a written crop as a materialization; `labels` are the (infos, file
    entries) stored with it."""
    root = storage.base()
    facts = dataset.facts
    manifest = build_manifest(
        dataset=dataset.name,
        title=facts.title,
        technique=facts.technique,
        organism=facts.organism,
        sample=facts.sample,
        voxel_size_nm=list(source.level.voxel_size_nm),
        voxel_size_source=source.voxel_size_source,
        source_urls=source.source_urls,
        license=facts.license,
        citation=facts.citation,
        doi=facts.doi,
        retrieved_at=datetime.now(UTC),
        run_config=source.run_config,
        source_version=source.version,
        provenance={
            "voxel_size_nm": source.voxel_size_source,
            "shape": "crop_size run config",
            "crop": (
                "seeded placement on the source chunk grid, coarse-level background probe, "
                "confirmed by the copy's own statistics"
            ),
            **source.provenance,  # a source placing its crop otherwise says so
        },
        **with_labels(
            steps.manifest_fields(outcome, source.level, source.levels[0], root),
            *(labels or ([], [])),
        ),
    )
    manifest = with_views(manifest, dataset, source, root).model_copy(
        update={"source_document": source.document}
    )
    manifest, unchanged = settle(manifest, previous)
    return materialization(
        manifest,
        unchanged,
        payload_bytes=None,  # the readers do not count bytes; chunks copied are shown instead
        thumbnail=steps.thumbnail(manifest, root),
        check_results=crop_check_results(dataset, manifest),
        metadata={
            "chunks_copied": MetadataValue.int(outcome.copy.chunks),
            "absent_chunks": MetadataValue.int(outcome.copy.absent_chunks),
            "blocks_copied": MetadataValue.int(outcome.copy.blocks),
            "copy_seconds": MetadataValue.float(round(outcome.copy.seconds, 3)),
            **source.metadata,
        },
    )


def with_views(
    manifest: Manifest, dataset: CropDataset, source: CropSource, root: UPath
) -> Manifest:
    """The crop's store listed as the dataset's image (labels included, as the store lists
    them), and a Neuroglancer link boxing the crop in its whole source volume."""
    crop, array_path = manifest.crop, manifest.array_path
    assert crop is not None and array_path is not None, "a crop manifest records its crop"
    url = None
    if source.viewer_source:
        state = crop_state(
            source.viewer_source,
            dataset.name,
            source.level.voxel_size_nm,
            source.level.translation_nm,
            tuple(crop.offset_voxels),  # type: ignore[arg-type]  # x, y, z: a manifest list of 3
            tuple(crop.size_voxels),  # type: ignore[arg-type]  # x, y, z: a manifest list of 3
        )
        url = link(state)
    store = root.joinpath(*array_path.split("/"))
    image = describe_image(root, store, "crop")
    return manifest.model_copy(update={"images": [image], "neuroglancer_url": url})


def copy_partition(
    dataset: CropDataset,
    source: CropSource,
    storage: StorageRoot,
    copier: CropCopy,
    partition: int,
    partitions: int,
    log: Logger,
) -> dict[str, Any]:
    """Copy this partition's share of the crop's blocks into the one shared store.

    Placement is a pure function of the seed and the source, so every partition (on any
    machine) finds the same crop and the same store, and writes disjoint whole chunks.
    """
    started = time.monotonic()
    placement = place(source, log)
    store = storage.dataset_dir(dataset.name) / steps.store_name(
        source.version, source.level, placement.box
    )
    output = ensure_image(store, steps.image_spec(source.level, placement, dataset.facts.title))
    mine = [
        block
        for index, block in enumerate(blocks(placement.box, copier.block(source.level.chunk)))
        if index % partitions == partition
    ]
    progress = copy_blocks(
        source.level.read_counted, placement.box, source.level.chunk, mine, output, log,
        f"{dataset.name}[{partition}]", copier.workers,
    )  # fmt: skip
    return {
        "store": store.name,
        "source_version": source.version,
        "offset": list(placement.box.offset),
        "size": list(placement.box.size),
        "placement": placement.description,
        "estimated_background": placement.estimated_background,
        "rejected": [
            {"offset": list(r.box.offset), "background": r.background, "judged_on": r.judged_on}
            for r in placement.rejected
        ],
        "progress": progress.to_json(),
        "seconds": time.monotonic() - started,
    }


def assemble(
    dataset: CropDataset,
    source: CropSource,
    partials: Mapping[str, dict[str, Any]],
    storage: StorageRoot,
    copier: CropCopy,
    log: Logger,
) -> MaterializeResult:
    """One manifest from the partitions' shares, once they cover the crop exactly, with the
    crop's labels copied beside it."""
    keys = {
        (p["store"], p["source_version"], tuple(p["offset"]), tuple(p["size"]))
        for p in partials.values()
    }
    if len(keys) != 1:
        raise PartitionMismatchError(
            f"{dataset.name}: partitions describe {len(keys)} different crops (the source or "
            "the config changed between them); materialize all partitions again"
        )
    store_name, version, offset, size = keys.pop()
    if version != source.version:
        raise PartitionMismatchError(
            f"{dataset.name}: partitions were copied from source version {version}, the "
            f"source is now {source.version}; materialize all partitions again"
        )
    first = next(iter(partials.values()))
    box = Box(offset, size)
    rejected = tuple(
        Rejection(Box(tuple(r["offset"]), box.size), r["background"], r["judged_on"])
        for r in first.get("rejected", [])
    )
    described = first["placement"]
    progress = CopiedBlocks()
    for partial in partials.values():
        progress.merge(CopiedBlocks.from_json(partial["progress"]))
    expected_chunks = len(list(blocks(Box((0, 0, 0), box.size), source.level.chunk)))
    if len(progress.digests) != expected_chunks:
        raise PartitionMismatchError(
            f"{dataset.name}: partitions copied {len(progress.digests)} of {expected_chunks} "
            "chunks; materialize the missing partitions"
        )
    seconds = sum(p["seconds"] for p in partials.values())
    result = result_of(progress, box, str(source.level.dtype), seconds)
    note = steps.full_resolution_note(result.statistics["background_fraction"], None)
    placement = Placement(
        box, source.seed, described + note, first["estimated_background"], rejected
    )
    store: UPath = storage.dataset_dir(dataset.name) / store_name
    spec = steps.image_spec(source.level, placement, dataset.facts.title)
    outcome = steps.outcome_of(placement, result, store, spec)
    # Labels are small beside the EM (one layer, copied once the EM is whole): one step.
    labels = copy_labels(
        source.labels, source.level, box, store, storage.base(), copier, log, dataset.name
    )
    return crop_materialization(
        dataset, source, outcome, storage, storage.stored_manifest(dataset.name), labels
    )


def crop_intact_check(dataset: CropDataset) -> AssetChecksDefinition:
    """The blocking check every crop carries: the stored crop still reads back as recorded
    (a check of its own, so the monthly `deep_verify` can run it without the asset)."""

    @asset_check(
        asset=dataset.name,
        name=f"{dataset.check_prefix}_crop_intact",
        blocking=True,
        description="The crop reads back with its recorded shape, dtype and voxel content digest.",
    )
    # `context` unannotated: under postponed annotations Dagster cannot resolve its type.
    def crop_intact(context, storage: StorageRoot) -> AssetCheckResult:
        return stored_data_intact(
            storage.base(), recorded_manifest(storage, dataset.name), deep=deep_requested(context)
        )

    return crop_intact


def crop_check_specs(name: str, facts: DatasetFacts, prefix: str) -> list[AssetCheckSpec]:
    """The WARN checks every crop carries, declared on its asset (single-step or assembled),
    whose step yields their results with the manifest (`crop_check_results`): a check step
    of their own would cost a re-run a step's worth of events for a look at the manifest.
    The source's finest voxel size is the documented one; the crop is not mostly background
    (placement avoids that where it can, so this fires when no better candidate was found,
    or on a partitioned crop, which is not copied again; a person should see it before
    training on it)."""
    documented = format_voxel_size(facts.documented_voxel_size_nm)
    return [
        AssetCheckSpec(
            f"{prefix}_voxel_size_documented",
            asset=name,
            description=(
                f"The source's finest voxel size is the documented {documented} (WARN if not)."
            ),
        ),
        AssetCheckSpec(
            f"{prefix}_crop_mostly_background",
            asset=name,
            description=(
                f"The crop is at most {MAX_BACKGROUND:.0%} background at full resolution "
                "(WARN if more: crop is mostly background)."
            ),
        ),
    ]


def crop_check_results(dataset: CropDataset, manifest: Manifest) -> list[AssetCheckResult]:
    """The results of `crop_check_specs` for the crop `manifest` records, in their order."""
    crop = manifest.crop
    assert crop is not None, f"a {dataset.name} manifest always records its crop"
    documented, background = crop_check_specs(dataset.name, dataset.facts, dataset.check_prefix)
    return [
        agrees_with_documentation(
            crop.source_base_voxel_size_nm,
            dataset.finest_level_source,
            dataset.facts,
            documented.name,
        ),
        mostly_background(crop, background.name),
    ]


def mostly_background(crop: CropInfo, check_name: str | None = None) -> AssetCheckResult:
    """WARN when the crop's measured background fraction is over the placement limit."""
    fraction = crop.statistics.background_fraction
    passed = fraction <= MAX_BACKGROUND
    return AssetCheckResult(
        check_name=check_name,
        passed=passed,
        severity=AssetCheckSeverity.WARN,
        description=None
        if passed
        else (
            f"crop is mostly background: {fraction:.1%} of its voxels, over the "
            f"{MAX_BACKGROUND:.0%} limit ({len(crop.rejected_candidates)} other candidates "
            "rejected, listed in the manifest)"
        ),
        metadata={
            "background_fraction": MetadataValue.float(round(fraction, 4)),
            "limit": MetadataValue.float(MAX_BACKGROUND),
            "placement": MetadataValue.text(crop.placement),
            "candidates_rejected": MetadataValue.int(len(crop.rejected_candidates)),
        },
    )
