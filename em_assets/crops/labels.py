"""Label layers copied with a crop, as NGFF labels of the crop image, aligned to it.

A label is copied for exactly the crop's physical box. A level at the EM's voxel size is
copied voxel for voxel; otherwise the label keeps its own resolution (never resampled:
a resampled label is a different label) and its NGFF scale and translation place it on
the same box. Voxels of the box that the source does not cover get the source's
"outside" value: the format's fill value (0, no object) or the annotation's "unknown".
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from upath import UPath

from em_assets.crops.copy import copy_crop
from em_assets.crops.geometry import Box
from em_assets.crops.ome_zarr import ARRAY_NAME, ImageSpec, create_label, stored_size
from em_assets.crops.resource import CropCopy
from em_assets.crops.volume import VolumeLevel, physical_offset
from em_assets.logger import Logger
from em_assets.manifest.model import FileEntry, LabelInfo, Manifest
from em_assets.settings import ConfigurationError
from em_assets.storage import fingerprint

RATIO_TOLERANCE = 1e-6


@dataclass(frozen=True)
class LabelSource:
    """One label layer of a source, opened and validated before any voxel moves."""

    name: str
    url: str
    levels: list[VolumeLevel]
    version: str
    outside_value: int
    """What voxels outside the source's extent hold: its fill value, or its 'unknown'."""
    unknown_value: int | None = None
    note: str = ""
    """Anything about the source a reader of the manifest should know (e.g. where the
    'unknown' value came from)."""


def integer_ratio(a: float, b: float) -> bool:
    """Whether the larger of two voxel sizes is a whole multiple of the smaller."""
    ratio = max(a, b) / min(a, b)
    return abs(ratio - round(ratio)) <= RATIO_TOLERANCE * ratio


def same_size(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(math.isclose(x, y, rel_tol=RATIO_TOLERANCE) for x, y in zip(a, b, strict=True))


def label_level(source: LabelSource, em: VolumeLevel) -> VolumeLevel:
    """The level at the EM's voxel size, else the finest level whose voxel size is a whole
    multiple or divisor of the EM's on every axis; anything else cannot be aligned."""
    for level in source.levels:
        if same_size(level.voxel_size_nm, em.voxel_size_nm):
            return level
    fitting = [
        level
        for level in source.levels
        if all(integer_ratio(level.voxel_size_nm[i], em.voxel_size_nm[i]) for i in range(3))
    ]
    if not fitting:
        sizes = ", ".join(f"{level.name}: {level.voxel_size_nm}" for level in source.levels)
        raise ConfigurationError(
            f"label {source.name!r} ({source.url}) has no level whose voxel size is the EM's "
            f"{em.voxel_size_nm} nm or a whole multiple or divisor of it ({sizes}); it cannot "
            "be stored aligned without resampling"
        )
    return min(fitting, key=lambda level: level.voxel_size_nm[0])


def check_alignable(sources: list[LabelSource], em: VolumeLevel) -> None:
    """Refuse, before any transfer, a label that could only be stored resampled."""
    for source in sources:
        label_level(source, em)


def label_box(em: VolumeLevel, crop: Box, level: VolumeLevel) -> Box:
    """The voxels of `level` whose physical extent lies within the crop's physical box.

    It may reach past the level's own bounds (a ground-truth crop smaller than the EM
    crop); those voxels get the source's outside value.
    """
    start = physical_offset(em, crop.offset)
    stop = physical_offset(em, crop.end)
    low, high = [], []
    for i in range(3):
        size, origin = level.voxel_size_nm[i], level.translation_nm[i]
        low.append(math.ceil((start[i] - origin) / size - RATIO_TOLERANCE))
        high.append(math.floor((stop[i] - origin) / size + RATIO_TOLERANCE))
    if any(high[i] <= low[i] for i in range(3)):
        raise ConfigurationError(
            f"level {level.name} ({level.voxel_size_nm} nm) is too coarse to hold a whole "
            f"voxel inside the crop's box from {start} to {stop} nm"
        )
    return Box((low[0], low[1], low[2]), (high[0] - low[0], high[1] - low[1], high[2] - low[2]))


def intersection(a: Box, b: Box) -> Box | None:
    low = [max(a.offset[i], b.offset[i]) for i in range(3)]
    high = [min(a.end[i], b.end[i]) for i in range(3)]
    if any(high[i] <= low[i] for i in range(3)):
        return None
    return Box((low[0], low[1], low[2]), (high[0] - low[0], high[1] - low[1], high[2] - low[2]))


def read_padded(level: VolumeLevel, box: Box, outside: int) -> tuple[np.ndarray, int]:
    """`box` of `level` as z, y, x, and how many of its chunks were never written (the
    format's fill value); voxels beyond the level's bounds hold `outside`."""
    inside = intersection(box, level.bounds)
    if inside == box:
        return level.read_counted(box)
    data = np.full(box.size[::-1], outside, dtype=level.dtype)
    absent = 0
    if inside is not None:
        part, absent = level.read_counted(inside)
        data[inside.relative_to(box.offset).zyx_slices()] = part
    return data, absent


class _Counts:
    """Non-zero and 'unknown' voxels over blocks read from several threads."""

    def __init__(self, unknown: int | None) -> None:
        self.unknown = unknown
        self.total = self.nonzero = self.unknowns = 0
        self._lock = threading.Lock()

    def add(self, data: np.ndarray) -> None:
        nonzero = int(np.count_nonzero(data))
        unknowns = int(np.count_nonzero(data == self.unknown)) if self.unknown is not None else 0
        with self._lock:
            self.total += data.size
            self.nonzero += nonzero
            self.unknowns += unknowns


def describe_treatment(
    source: LabelSource, level: VolumeLevel, em: VolumeLevel, box: Box, crop: Box
) -> tuple[Literal["copied", "native_resolution"], str]:
    """("copied" | "native_resolution", what was done in words)."""
    same_grid = (
        same_size(level.voxel_size_nm, em.voxel_size_nm)
        and same_size(physical_offset(level, box.offset), physical_offset(em, crop.offset))
        and box.size == crop.size
    )
    treatment: Literal["copied", "native_resolution"]
    if same_grid:
        treatment = "copied"
        words = f"copied voxel for voxel from {level.name}, on the EM grid at the crop's offset"
    else:
        treatment = "native_resolution"
        words = (
            f"stored at its own resolution ({level.name}, {list(level.voxel_size_nm)} nm; the "
            f"EM is {list(em.voxel_size_nm)} nm), not resampled; its NGFF scale and "
            f"translation place it on the crop's physical box"
        )
    outside = intersection(box, level.bounds) != box
    if outside:
        kind = "unknown" if source.outside_value == source.unknown_value else "fill value"
        words += (
            f"; voxels of the crop outside the source's extent hold {source.outside_value} ({kind})"
        )
    if source.note:
        words += f"; {source.note}"
    return treatment, words


def copy_label(
    source: LabelSource,
    em: VolumeLevel,
    crop: Box,
    store: UPath,
    root: UPath,
    copier: CropCopy,
    log: Logger,
    dataset: str,
) -> tuple[LabelInfo, FileEntry]:
    """Stream one label layer for the crop's box into `{store}/labels/{name}`."""
    level = label_level(source, em)
    box = label_box(em, crop, level)
    spec = ImageSpec(
        name=source.name,
        shape_zyx=box.size[::-1],
        chunks_zyx=level.chunk[::-1],
        dtype=str(level.dtype),
        voxel_size_nm=level.voxel_size_nm,
        translation_nm=physical_offset(level, box.offset),
    )
    output = create_label(store, source.name, spec)
    counts = _Counts(source.unknown_value)

    def read(block: Box) -> tuple[np.ndarray, int]:
        data, absent = read_padded(level, block, source.outside_value)
        counts.add(data)
        return data, absent

    result = copy_crop(
        read, box, level.chunk, copier.block(level.chunk), output, log,
        f"{dataset} label {source.name}", copier.workers,
    )  # fmt: skip
    group = store / "labels" / source.name
    _, stored_bytes = stored_size(group)
    relative = group.path.removeprefix(root.path).strip("/")
    treatment, words = describe_treatment(source, level, em, box, crop)
    log.info(f"{dataset} label {source.name}: {words}")
    info = LabelInfo(
        name=source.name,
        path=relative,
        source_url=source.url,
        source_level=level.name,
        source_version=source.version,
        voxel_size_nm=list(level.voxel_size_nm),
        translation_nm=list(spec.translation_nm),
        dtype=str(level.dtype),
        shape=list(spec.shape_zyx),
        offset_voxels=list(box.offset),
        treatment=treatment,
        description=words,
        nonzero_fraction=counts.nonzero / counts.total,
        outside_value=source.outside_value,
        unknown_value=source.unknown_value,
        unknown_fraction=(
            counts.unknowns / counts.total if source.unknown_value is not None else None
        ),
    )
    entry = FileEntry(
        path=f"{relative}/{ARRAY_NAME}",
        kind="zarr_array",
        bytes=stored_bytes,
        sha256=result.content_digest,
        shape=info.shape,
        dtype=info.dtype,
        fingerprint=fingerprint.settled(group / ARRAY_NAME),
    )
    return info, entry


def copy_labels(
    sources: list[LabelSource],
    em: VolumeLevel,
    crop: Box,
    store: UPath,
    root: UPath,
    copier: CropCopy,
    log: Logger,
    dataset: str,
) -> tuple[list[LabelInfo], list[FileEntry]]:
    infos, entries = [], []
    for source in sources:
        info, entry = copy_label(source, em, crop, store, root, copier, log, dataset)
        infos.append(info)
        entries.append(entry)
    return infos, entries


def labels_current(previous: Manifest, sources: list[LabelSource]) -> bool:
    """Whether the stored crop carries exactly the requested labels, from the same sources."""
    recorded = [(label.name, label.source_url, label.source_version) for label in previous.labels]
    return recorded == [(source.name, source.url, source.version) for source in sources]


def with_labels(
    fields: dict[str, Any], infos: list[LabelInfo], entries: list[FileEntry]
) -> dict[str, Any]:
    """The crop's manifest fields with its labels added (their arrays count as its files)."""
    return {**fields, "files": [*fields["files"], *entries], "labels": infos}
