"""The `images_intact` check: every image the manifest lists is there, says what the manifest
says, and (converted ones) was made from exactly the files the manifest holds.

A loader trusts `images` without looking further, so the check reads each store's own
metadata, as `describe_image` did when the manifest was written, and compares: shape, voxel
size, labels, every pyramid level, and for a converted image the record of its sources'
sha256 (an image left from older files would otherwise pass for the new ones). Missing
chunks cannot be told from empty ones (zarr does not write chunks that are all fill
value), so the cheap check reads no voxels; `deep` decodes every chunk of every level and
label, which is how rot inside a chunk is caught.
"""

from __future__ import annotations

import functools
from typing import Any, cast

import numpy as np
import zarr
from dagster import AssetCheckResult, AssetChecksDefinition, MetadataValue, asset_check
from upath import UPath

from em_assets.crops.ome_zarr import ARRAY_NAME, open_group
from em_assets.images.convert import RECORD_KEY
from em_assets.images.describe import describe_image
from em_assets.images.pyramid import chunk_regions
from em_assets.manifest.model import ImageEntry, Manifest
from em_assets.refresh.verification import deep_requested
from em_assets.storage.root import StorageRoot, child_path


def images_check(asset_name: str) -> AssetChecksDefinition:
    """The `{asset}_images_intact` check of one dataset (not blocking: the stored data the
    images were made from are checked by the dataset's own intact check; this one guards
    what loaders and viewers open). The monthly `deep_verify` runs it deeply too."""

    @asset_check(
        asset=asset_name,
        name=f"{asset_name}_images_intact",
        description="Every OME-Zarr image the manifest lists opens with the recorded shape, "
        "voxel size, labels and pyramid levels, made from the stored files (deep: every "
        "chunk decodes).",
    )
    # `context` unannotated: under postponed annotations Dagster cannot resolve its type.
    def images_intact_check(context, storage: StorageRoot) -> AssetCheckResult:
        manifest = storage.stored_manifest(asset_name)
        if manifest is None:
            return AssetCheckResult(
                passed=False,
                description=f"no readable manifest of {asset_name}: materialize it again",
            )
        return images_intact(storage.base(), manifest, deep_requested(context))

    return images_intact_check


def images_intact(root: UPath, manifest: Manifest, deep: bool = False) -> AssetCheckResult:
    problems: list[str] = []
    voxels_read = 0
    for entry in manifest.images:
        found, read = _image_problems(root, manifest, entry, deep)
        problems.extend(found)
        voxels_read += read
    return AssetCheckResult(
        passed=not problems,
        metadata={
            "images_checked": MetadataValue.int(len(manifest.images)),
            "verification": MetadataValue.text("deep" if deep else "metadata"),
            "voxels_decoded": MetadataValue.int(voxels_read),
            "problems": MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none"),
        },
    )


def _image_problems(
    root: UPath, manifest: Manifest, entry: ImageEntry, deep: bool
) -> tuple[list[str], int]:
    where = entry.path
    try:
        path = functools.reduce(child_path, entry.path.split("/"), root)
        stored = describe_image(root, path, entry.name)
        group = open_group(path)
    except (FileNotFoundError, KeyError, ValueError, OSError) as error:
        return [f"{where}: cannot be opened as an OME-Zarr image ({error}); materialize again"], 0
    problems = [
        f"{where}: {field} is {getattr(stored, field)} in the store but "
        f"{getattr(entry, field)} in the manifest"
        for field in ("shape_zyx", "voxel_size_nm", "labels")
        if getattr(stored, field) != getattr(entry, field)
    ]
    record = group.attrs.get(RECORD_KEY)
    if isinstance(record, dict):
        problems.extend(_stale_sources(where, record, manifest))
    arrays = [(where, group)] + [
        # NGFF 0.4: each label image is a group (its own multiscales), like the image.
        (f"{where}/labels/{name}", cast(zarr.Group, group[f"labels/{name}"]))
        for name in stored.labels
        if _has(group, f"labels/{name}")
    ]
    problems.extend(
        f"{where}/labels/{name}: missing"
        for name in stored.labels
        if not _has(group, f"labels/{name}")
    )
    read = 0
    for label, image in arrays:
        found, voxels = _levels(label, image, tuple(entry.shape_zyx), deep)
        problems.extend(found)
        read += voxels
    return problems, read


def _stale_sources(where: str, record: dict[str, Any], manifest: Manifest) -> list[str]:
    """The files the image says it was made from must be the manifest's, byte for byte."""
    held = {file.path: file.sha256 for file in manifest.files}
    return [
        f"{where}: made from {source} with sha256 {digest[:12]}…, but the manifest's copy "
        + (f"has {held[source][:12]}…" if source in held else "is not listed")
        + "; materialize again to convert it"
        for source, digest in sorted(record.get("sources", {}).items())
        if held.get(source) != digest
    ]


def _has(group: Any, key: str) -> bool:
    try:
        group[key]
    except KeyError:
        return False
    return True


def _levels(
    where: str, group: Any, shape_zyx: tuple[int, ...], deep: bool
) -> tuple[list[str], int]:
    """Every level of the multiscales is present, with s0 the image's shape and each later
    level at most half (never more) of the one before along every axis; `deep` decodes them."""
    problems: list[str] = []
    read = 0
    datasets = group.attrs.asdict()["multiscales"][0]["datasets"]
    previous: tuple[int, ...] | None = None
    for dataset in datasets:
        name = dataset["path"]
        if not _has(group, name):
            problems.append(f"{where}/{name}: listed in multiscales but missing")
            continue
        array = group[name]
        shape = tuple(int(n) for n in array.shape)
        if name == ARRAY_NAME and shape != shape_zyx:
            problems.append(f"{where}/{name}: shape {shape}, the image is {shape_zyx}")
        if previous is not None and any(
            n > p or n < p // 2 for n, p in zip(shape, previous, strict=True)
        ):
            problems.append(f"{where}/{name}: shape {shape} is not a 2× level of {previous}")
        previous = shape
        if deep:
            try:
                read += _decode_all(array)
            except Exception as error:  # a codec error of any kind is the finding itself
                problems.append(f"{where}/{name}: a chunk does not decode ({error})")
    return problems, read


def _decode_all(array: Any) -> int:
    """Decode every chunk once, a chunk at a time (bounded memory); returns voxels read."""
    return sum(
        int(np.asarray(array[region]).size) for region in chunk_regions(array.shape, array.chunks)
    )
