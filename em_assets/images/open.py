"""`open_image`: any dataset's image from any storage root, one call, no Dagster run.

It reads the dataset's stored manifest (`{root}/{dataset}.json`) for where the image is,
then the image's own NGFF metadata for its geometry, and returns lazy zarr arrays: nothing
is read until indexed, so opening the 3.3 GB EPFL volume costs a few small reads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import zarr
from upath import UPath

from em_assets.crops.ome_zarr import ARRAY_NAME, open_group
from em_assets.manifest.model import ImageEntry
from em_assets.settings import ASSETS_ROOT
from em_assets.storage.manifest_store import manifest_path, read_manifest
from em_assets.storage.root import parse_root

Nanometres = tuple[float, float, float]


class ImageNotMaterializedError(FileNotFoundError):
    """The dataset (or its images) has not been materialized under this root."""


@dataclass(frozen=True)
class Image:
    """One OME-Zarr image: arrays are z, y, x; physical values are x, y, z in nanometres."""

    name: str
    path: UPath
    data: zarr.Array
    """The full-resolution level (s0), lazy: index it like a numpy array."""
    voxel_size_nm: Nanometres
    translation_nm: Nanometres
    """Physical position of voxel (0, 0, 0): a crop's place in its source volume."""
    labels: dict[str, zarr.Array] = field(default_factory=dict)
    """Label name -> full-resolution label array, voxel for voxel with `data`."""
    levels: list[zarr.Array] = field(default_factory=list)
    """Every pyramid level, finest first (`levels[0]` is `data`)."""


def _build_hint(dataset: str) -> str:
    return f"dagster asset materialize -m em_assets --select {dataset}"


def open_image(
    dataset: str, root: str | os.PathLike[str] | UPath | None = None, name: str | None = None
) -> Image:
    """The image `name` (default: the dataset's first) of `dataset` under `root` (default:
    `EM_ASSETS_ROOT`, else ./em_data): a local path, s3://, gs:// or any fsspec URL."""
    setting = "root" if root is not None else ASSETS_ROOT.name
    if isinstance(root, UPath):
        text: str | None = str(root)
    else:
        text = os.fspath(root) if root is not None else os.environ.get(ASSETS_ROOT.name)
    base = parse_root(text or ASSETS_ROOT.default, setting)
    entry = _image_entry(base, dataset, name)
    path = base.joinpath(*PurePath(entry.path).parts)
    group = open_group(path)
    attrs: dict[str, Any] = group.attrs.asdict()
    multiscale = attrs["multiscales"][0]
    transforms = {t["type"]: t for t in multiscale["datasets"][0]["coordinateTransformations"]}
    scale = transforms["scale"]["scale"]
    translation = transforms.get("translation", {}).get("translation", [0.0, 0.0, 0.0])
    return Image(
        name=entry.name,
        path=path,
        data=_array(group, ARRAY_NAME),
        voxel_size_nm=_xyz(scale),
        translation_nm=_xyz(translation),
        labels={label: _array(group, f"labels/{label}/{ARRAY_NAME}") for label in entry.labels},
        levels=[_array(group, dataset["path"]) for dataset in multiscale["datasets"]],
    )


def _array(group: zarr.Group, path: str) -> zarr.Array:
    found = group[path]
    if not isinstance(found, zarr.Array):
        raise TypeError(f"{group.store_path}/{path} is a group where an array belongs")
    return found


def _xyz(zyx: list[float]) -> Nanometres:
    return float(zyx[2]), float(zyx[1]), float(zyx[0])


def _image_entry(base: UPath, dataset: str, name: str | None) -> ImageEntry:
    where = manifest_path(base, dataset)
    try:
        manifest = read_manifest(where)
    except FileNotFoundError:
        raise ImageNotMaterializedError(
            f"{dataset!r} is not materialized under {base} (no {where.name} there); "
            f"build it with: {_build_hint(dataset)}"
        ) from None
    if not manifest.images:
        raise ImageNotMaterializedError(
            f"{dataset!r} under {base} was materialized before it had OME-Zarr images; "
            f"build them with: {_build_hint(dataset)}"
        )
    if name is None:
        return manifest.images[0]
    for entry in manifest.images:
        if entry.name == name:
            return entry
    names = ", ".join(entry.name for entry in manifest.images)
    raise KeyError(f"{dataset!r} has no image {name!r}; its images are: {names}")
