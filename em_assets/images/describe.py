"""A stored OME-Zarr image as the manifest lists it: read from its own metadata.

Used for converted images and for crop stores alike, so the manifest says what the store
says (voxel size from `multiscales`, labels from `labels/.zattrs`), not what the code meant
to write.
"""

from __future__ import annotations

from typing import Any

from upath import UPath

from em_assets.crops.ome_zarr import open_image
from em_assets.manifest.model import ImageEntry


def relative_path(root: UPath, path: UPath) -> str:
    return path.path.removeprefix(root.path).strip("/")


def finest_scale_zyx(attrs: dict[str, Any]) -> list[float]:
    """The `scale` of the first (finest) dataset of the first multiscales entry, z, y, x."""
    dataset = attrs["multiscales"][0]["datasets"][0]
    for transform in dataset["coordinateTransformations"]:
        if transform["type"] == "scale":
            return [float(v) for v in transform["scale"]]
    raise ValueError(f"dataset {dataset['path']!r} has no scale transform")


def label_names(group: Any) -> list[str]:
    """Names listed in `labels/.zattrs` (NGFF), or none."""
    try:
        labels = group["labels"]
    except KeyError:
        return []
    return [str(name) for name in labels.attrs.get("labels", [])]


def describe_image(root: UPath, path: UPath, name: str) -> ImageEntry:
    group, array = open_image(path)
    scale_zyx = finest_scale_zyx(group.attrs.asdict())
    return ImageEntry(
        name=name,
        path=relative_path(root, path),
        shape_zyx=[int(n) for n in array.shape],
        voxel_size_nm=scale_zyx[::-1],
        labels=label_names(group),
    )
