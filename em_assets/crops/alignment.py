"""Proof that each stored label lies on its crop: geometry from the stored NGFF metadata,
values compared with the source at the same world coordinate.

Misaligned training pairs are the costly failure (offsets in nm read as voxels, x, y, z
read as z, y, x, a label at another resolution taken as the EM's): they look fine and
train badly. So the check reads what a user's loader would read, the stored metadata and
voxels, not what the manifest says was written.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable

import numpy as np
from dagster import AssetCheckResult, AssetChecksDefinition, MetadataValue, asset_check
from upath import UPath

from em_assets.crops.geometry import Box
from em_assets.crops.label_sources import reopen_level
from em_assets.crops.labels import integer_ratio, read_padded
from em_assets.crops.ome_zarr import open_image
from em_assets.crops.volume import VolumeLevel
from em_assets.manifest.model import LabelInfo, Manifest
from em_assets.storage.root import StorageRoot

POSITIONS = 3
TOLERANCE_NM = 1e-3

Reopen = Callable[[str, str], VolumeLevel]


def _geometry(
    group_attrs: dict, shape_zyx: tuple[int, ...]
) -> tuple[list[float], list[float], list[int]]:
    """(scale, translation, shape) as x, y, z, from a stored image's NGFF metadata."""
    dataset = group_attrs["multiscales"][0]["datasets"][0]
    transforms = {t["type"]: t for t in dataset["coordinateTransformations"]}
    scale = [float(v) for v in transforms["scale"]["scale"][::-1]]
    translation = [
        float(v)
        for v in transforms.get("translation", {"translation": [0] * 3})["translation"][::-1]
    ]
    return scale, translation, [int(n) for n in shape_zyx[::-1]]


def _seed(label: LabelInfo, manifest: Manifest) -> int:
    """Positions fixed by what is stored, so a rerun checks the same voxels."""
    key = f"{manifest.content_version()}|{label.path}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


def _positions(array, label: LabelInfo, rng: np.random.Generator) -> list[list[int]]:
    """Random voxels (x, y, z), each in a random stored chunk and, where that chunk has
    any, on an object: a zero compared with a zero proves little about alignment."""
    chunks = array.chunks  # z, y, x
    grid = [math.ceil(n / c) for n, c in zip(array.shape, chunks, strict=True)]
    positions = []
    for _ in range(POSITIONS):
        cell = [int(rng.integers(0, n)) for n in grid]
        start = [cell[i] * chunks[i] for i in range(3)]
        block = np.asarray(array[tuple(slice(start[i], start[i] + chunks[i]) for i in range(3))])
        informative = block != 0
        if label.unknown_value is not None:
            informative &= block != label.unknown_value
        candidates = np.argwhere(informative)
        if not len(candidates):
            candidates = np.argwhere(np.ones(block.shape, dtype=bool))
        z, y, x = (int(v) for v in candidates[int(rng.integers(0, len(candidates)))])
        positions.append([start[2] + x, start[1] + y, start[0] + z])
    return positions


def label_problems(
    root: UPath, manifest: Manifest, label: LabelInfo, reopen: Reopen = reopen_level
) -> tuple[list[str], list[str]]:
    """(problems, positions compared) for one stored label."""
    assert manifest.array_path is not None
    image_group, image = open_image(root.joinpath(*manifest.array_path.split("/")))
    label_group, array = open_image(root.joinpath(*label.path.split("/")))
    em_scale, em_origin, em_shape = _geometry(image_group.attrs.asdict(), image.shape)
    scale, origin, shape = _geometry(label_group.attrs.asdict(), array.shape)
    problems = []
    for i, axis in enumerate("xyz"):
        em_low, em_high = em_origin[i], em_origin[i] + em_scale[i] * em_shape[i]
        low, high = origin[i], origin[i] + scale[i] * shape[i]
        if low < em_low - TOLERANCE_NM or high > em_high + TOLERANCE_NM:
            problems.append(
                f"{label.name}: {axis} extent {low:g}-{high:g} nm is not within the crop's "
                f"{em_low:g}-{em_high:g} nm"
            )
        if not integer_ratio(scale[i], em_scale[i]):
            problems.append(
                f"{label.name}: {axis} voxel size {scale[i]:g} nm is not the crop's "
                f"{em_scale[i]:g} nm or a whole multiple or divisor of it"
            )
    source = reopen(label.source_url, label.source_level)
    if str(array.dtype) != str(source.dtype):
        problems.append(f"{label.name}: stored dtype {array.dtype}, source {source.dtype}")
    rng = np.random.default_rng(_seed(label, manifest))
    compared = []
    for index in _positions(array, label, rng):
        stored = int(np.asarray(array[index[2], index[1], index[0]]))
        world = [origin[i] + index[i] * scale[i] for i in range(3)]
        voxel = [
            round((world[i] - source.translation_nm[i]) / source.voxel_size_nm[i]) for i in range(3)
        ]
        on_grid = all(
            math.isclose(
                source.translation_nm[i] + voxel[i] * source.voxel_size_nm[i],
                world[i],
                abs_tol=TOLERANCE_NM,
            )
            for i in range(3)
        )
        one = Box((voxel[0], voxel[1], voxel[2]), (1, 1, 1))
        expected = int(read_padded(source, one, label.outside_value)[0].item())
        found = (
            f"{label.name} voxel {index} (x, y, z) at {world} nm: stored {stored}, "
            f"source {expected} (source voxel {voxel})"
        )
        compared.append(found)
        if not on_grid:
            problems.append(f"{label.name}: {world} nm is not on the source's voxel grid")
        elif stored != expected:
            problems.append(f"{label.name}: value differs: {found}")
    return problems, compared


def labels_aligned(
    root: UPath, manifest: Manifest, reopen: Reopen = reopen_level
) -> AssetCheckResult:
    problems: list[str] = []
    compared: list[str] = []
    for label in manifest.labels:
        found, positions = label_problems(root, manifest, label, reopen)
        problems.extend(found)
        compared.extend(positions)
    return AssetCheckResult(
        passed=not problems,
        metadata={
            "labels_checked": MetadataValue.int(len(manifest.labels)),
            "problems": MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none"),
            "positions_compared": MetadataValue.md(
                "\n".join(f"- {p}" for p in compared) or "no labels stored"
            ),
        },
    )


def label_checks(dataset: str, prefix: str) -> AssetChecksDefinition:
    """The blocking check every labelled crop carries."""

    @asset_check(
        asset=dataset,
        name=f"{prefix}_labels_aligned",
        blocking=True,
        description=(
            "Each stored label lies within the crop's physical box, at its voxel size or a "
            "whole multiple or divisor of it, in the source's dtype, and equals the source "
            f"label at the same world coordinate at {POSITIONS} random positions."
        ),
    )
    def labels_aligned_check(storage: StorageRoot) -> AssetCheckResult:
        manifest = storage.stored_manifest(dataset)
        if manifest is None:
            raise FileNotFoundError(f"{dataset} has no stored manifest under {storage.base()}")
        return labels_aligned(storage.base(), manifest)

    return labels_aligned_check
