"""CellMap ground-truth crops of an OpenOrganelle dataset, as label sources for a crop.

Layout, from public sources:
- `{dataset}.zarr/recon-1/labels/groundtruth/crop<N>/<class>/s<k>`, one NGFF 0.4 multiscale
  group per class with its own scale and translation (CellMap segmentation challenge, data
  README and FAQ: "ground truth data in .../recon-1/labels/groundtruth/crop124/mito").
- The crop group's attributes are `{"cellmap": {"annotation": {... "class_names": [...]}}}`
  (cellmap-schemas, `cellmap_schemas/annotation.py`, `CropGroupAttrs`).
- Each class group carries `{"cellmap": {"annotation": {"class_name", "annotation_type":
  {"type", "encoding": {"absent": 0, "unknown": 255, ...}}}}}` (`AnnotationGroupAttrs`), and
  each scale array the same plus `complement_counts` (`AnnotationArrayAttrs`; an s0
  `.zattrs` is quoted in janelia-cellmap/cellmap-segmentation-challenge issue #132).
  "unknown" marks voxels nobody annotated: they are not background and must never be 0.
"""

from __future__ import annotations

import json
import math
from typing import Any

import fsspec
import numpy as np
import zarr

from em_assets.crops.geometry import Box
from em_assets.crops.labels import LabelSource
from em_assets.crops.placement import Placement
from em_assets.crops.volume import VolumeLevel, physical_offset
from em_assets.crops.zarr_source import ZarrLevel, multiscale_levels, storage_options
from em_assets.manifest.model import version_digest
from em_assets.settings import ConfigurationError

GROUNDTRUTH = "recon-1/labels/groundtruth"
EDGE_TOLERANCE = 1e-6


def annotation(attrs: dict[str, Any]) -> dict[str, Any]:
    return attrs.get("cellmap", {}).get("annotation", {})


def _open_group(url: str) -> zarr.Group:
    return zarr.open_group(url, mode="r", zarr_format=2, storage_options=storage_options(url))


def _read_json(url: str) -> dict[str, Any] | None:
    fs, path = fsspec.url_to_fs(url, **storage_options(url))
    try:
        return json.loads(fs.cat_file(path))
    except FileNotFoundError:
        return None


def available_crops(container: str) -> list[str]:
    """The crop names under the ground-truth group, from its metadata: zarr v2 consolidated
    metadata (`.zmetadata`) if present, else one listing of the group's direct children
    (the crop prefixes, never the chunk keys beneath them). Whether the public bucket has
    consolidated metadata at this level is not confirmed; it is listable (open.quiltdata.com
    browses it), so the fallback works there."""
    url = f"{container}/{GROUNDTRUTH}"
    consolidated = _read_json(f"{url}/.zmetadata")
    if consolidated is not None:
        keys = consolidated.get("metadata", {})
        return sorted({key.split("/")[0] for key in keys if key.count("/") == 1})
    fs, path = fsspec.url_to_fs(url, **storage_options(url))
    try:
        children = fs.ls(path, detail=False)
    except (PermissionError, OSError) as error:
        raise ConfigurationError(
            f"{url} has no consolidated metadata and cannot be listed ({error})"
        ) from error
    return sorted(child.rstrip("/").rsplit("/", 1)[-1] for child in children)


def _unknown_value(class_attrs: dict[str, Any], levels: list[ZarrLevel]) -> int | None:
    """The class's "unknown" value: from the class group's encoding, else its finest array's."""
    for attrs in (class_attrs, levels[0].array.attrs.asdict()):
        encoding = annotation(attrs).get("annotation_type", {}).get("encoding", {})
        if "unknown" in encoding:
            return int(encoding["unknown"])
    return None


def open_groundtruth(container: str, crop: str, variable: str) -> list[LabelSource]:
    """One label source per annotated class of `crop`; an unknown crop fails here, before
    any transfer, naming the crops that exist."""
    url = f"{container}/{GROUNDTRUTH}/{crop}"
    attrs = _read_json(f"{url}/.zattrs")
    if attrs is None:
        names = available_crops(container)
        raise ConfigurationError(
            f"groundtruth_crop {crop!r} does not exist in {container}/{GROUNDTRUTH} "
            f"({variable}); available: {', '.join(names) or 'none'}"
        )
    class_names = annotation(attrs).get("class_names")
    if not class_names:
        raise ConfigurationError(f"{url}/.zattrs lists no cellmap annotation class_names")
    sources = []
    for name in class_names:
        group = _open_group(f"{url}/{name}")
        levels = multiscale_levels(group, f"{url}/{name}")
        class_attrs = group.attrs.asdict()
        unknown = _unknown_value(class_attrs, levels)
        if unknown is None:
            outside = int(np.iinfo(levels[0].dtype).max)
            note = (
                f"the annotation names no 'unknown' value; the dtype maximum {outside} "
                "marks voxels outside the annotated box"
            )
        else:
            outside = unknown
            note = f"'unknown' = {unknown} from {url}/{name}/.zattrs cellmap annotation encoding"
        version = version_digest(
            {
                "crop": attrs,
                "class": class_attrs,
                "arrays": {level.name: level.array.metadata.to_dict() for level in levels},
            }
        )
        sources.append(
            LabelSource(
                name=name,
                url=f"{url}/{name}",
                levels=list(levels),
                version=version,
                outside_value=outside,
                unknown_value=unknown,
                note=note,
            )
        )
    return sources


def annotated_extent(sources: list[LabelSource]) -> tuple[list[float], list[float]]:
    """The physical box (x, y, z, nm) the classes' finest levels cover together."""
    low = [math.inf] * 3
    high = [-math.inf] * 3
    for source in sources:
        finest = min(source.levels, key=lambda level: level.voxel_size_nm[0])
        start = physical_offset(finest, finest.bounds.offset)
        stop = physical_offset(finest, finest.bounds.end)
        low = [min(low[i], start[i]) for i in range(3)]
        high = [max(high[i], stop[i]) for i in range(3)]
    return low, high


def placement_around(
    em: VolumeLevel, sources: list[LabelSource], crop: str, seed: int
) -> Placement:
    """The smallest EM crop on the EM chunk grid that contains the annotated box."""
    low_nm, high_nm = annotated_extent(sources)
    bounds, chunk = em.bounds, em.chunk
    low, high = [], []
    for i in range(3):
        first = math.floor(
            (low_nm[i] - em.translation_nm[i]) / em.voxel_size_nm[i] + EDGE_TOLERANCE
        )
        last = math.ceil((high_nm[i] - em.translation_nm[i]) / em.voxel_size_nm[i] - EDGE_TOLERANCE)
        first = bounds.offset[i] + (first - bounds.offset[i]) // chunk[i] * chunk[i]
        last = bounds.offset[i] + -(-(last - bounds.offset[i]) // chunk[i]) * chunk[i]
        low.append(max(first, bounds.offset[i]))
        high.append(min(last, bounds.end[i]))
    if any(high[i] <= low[i] for i in range(3)) or any(
        low_nm[i] < physical_offset(em, bounds.offset)[i] - EDGE_TOLERANCE
        or high_nm[i] > physical_offset(em, bounds.end)[i] + EDGE_TOLERANCE
        for i in range(3)
    ):
        raise ConfigurationError(
            f"ground-truth crop {crop} ({low_nm} to {high_nm} nm) is not inside the EM "
            f"level {em.name}"
        )
    box = Box((low[0], low[1], low[2]), (high[0] - low[0], high[1] - low[1], high[2] - low[2]))
    description = (
        f"placed to contain ground-truth crop {crop} ({[round(v, 3) for v in low_nm]} to "
        f"{[round(v, 3) for v in high_nm]} nm, x, y, z), widened to the EM chunk grid"
    )
    return Placement(box, seed, description, None)
