"""The crop's output: an OME-Zarr (NGFF 0.4, zarr v2) image on any fsspec path.

NGFF 0.4 on zarr v2 is what ome-zarr-py, napari, neuroglancer and Fiji read today;
axes are z, y, x in nanometres, `scale` is the voxel size and `translation` the crop's
physical position in the source volume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numcodecs
import numpy as np
import zarr
from upath import UPath
from zarr.errors import ContainsArrayError

ARRAY_NAME = "s0"
COMPRESSOR = numcodecs.Blosc(cname="zstd", clevel=1, shuffle=numcodecs.Blosc.NOSHUFFLE)
"""Measured on 64³ uint8 EM-like chunks (benchmarks/analysis.md): zstd level 1 without a
shuffle stores 2.5 % more than level 5 with bitshuffle but encodes 15 times faster; at
level 5 compressing the output cost more CPU than decoding the JPEG source, and the
copy of a crop was bound by it. Byte shuffle is a no-op on 1-byte voxels."""
AccessMode = Literal["r", "r+", "a", "w", "w-"]
"""The modes `zarr.open_group` accepts."""


@dataclass(frozen=True)
class ImageSpec:
    name: str
    shape_zyx: tuple[int, int, int]
    chunks_zyx: tuple[int, int, int]
    dtype: str
    voxel_size_nm: tuple[float, float, float]
    """x, y, z"""
    translation_nm: tuple[float, float, float]
    """x, y, z"""


def _location(path: UPath) -> tuple[str, dict[str, Any] | None]:
    """What zarr needs to open `path`: a local path, or a URL with fsspec options."""
    if path.protocol in ("", "file", "local"):
        return path.path, None
    return str(path), dict(path.storage_options) or None


Factors = tuple[int, int, int]
"""Cumulative downsampling factors of a pyramid level relative to s0, x, y, z."""


def level_name(index: int) -> str:
    return f"s{index}"


def level_transforms(spec: ImageSpec, factors: Factors) -> list[dict[str, Any]]:
    """NGFF scale and translation (z, y, x) of a level downsampled by `factors` from s0.

    A voxel of a level averaged from f voxels is centred on their middle, (f - 1) / 2 s0
    voxels after the first one: that is where its translation puts it.
    """
    scale = [spec.voxel_size_nm[i] * factors[i] for i in range(3)]
    translation = [
        spec.translation_nm[i] + (factors[i] - 1) / 2 * spec.voxel_size_nm[i] for i in range(3)
    ]
    return [
        {"type": "scale", "scale": scale[::-1]},
        {"type": "translation", "translation": translation[::-1]},
    ]


def multiscales(spec: ImageSpec, factors: list[Factors] | None = None) -> list[dict[str, Any]]:
    """The NGFF 0.4 `multiscales` attribute: one dataset `s{i}` per entry of `factors`
    (s0 alone by default)."""
    return [
        {
            "version": "0.4",
            "name": spec.name,
            "axes": [{"name": axis, "type": "space", "unit": "nanometer"} for axis in "zyx"],
            "datasets": [
                {"path": level_name(index), "coordinateTransformations": level_transforms(spec, f)}
                for index, f in enumerate(factors or [(1, 1, 1)])
            ],
        }
    ]


def create_image(path: UPath, spec: ImageSpec) -> zarr.Array:
    """An empty OME-Zarr image at `path` (replacing anything there), ready for block writes."""
    store, options = _location(path)
    group = zarr.open_group(store, mode="w", zarr_format=2, storage_options=options)
    group.attrs["multiscales"] = multiscales(spec)
    return _create_array(group, spec)


def ensure_image(path: UPath, spec: ImageSpec) -> zarr.Array:
    """The image at `path`, created if absent, never wiped: the partitions of one crop all
    call this, possibly at once, and one must not erase chunks another already wrote.

    An existing image of another geometry is an error, not something to overwrite.
    """
    store, options = _location(path)
    group = zarr.open_group(store, mode="a", zarr_format=2, storage_options=options)
    group.attrs["multiscales"] = multiscales(spec)  # same content from every partition
    try:
        return _create_array(group, spec)
    except ContainsArrayError:
        array = group[ARRAY_NAME]
    found = (tuple(array.shape), tuple(array.chunks), str(array.dtype))  # type: ignore[union-attr]  # s0 is written as an array
    wanted = (spec.shape_zyx, spec.chunks_zyx, spec.dtype)
    if found != wanted:
        raise FileExistsError(f"{path} holds an image {found}, not the crop {wanted}")
    return array  # type: ignore[return-value]  # s0 is written as an array


def create_label(
    image_path: UPath, name: str, spec: ImageSpec, colors: list[dict] | None = None
) -> zarr.Array:
    """An empty NGFF 0.4 label image `labels/{name}` inside the image at `image_path`
    (replacing a label of that name), listed in `labels/.zattrs`, ready for block writes.

    `spec` carries the label's own scale and translation, so a label at another resolution
    than its image still lands on the same physical box (NGFF 0.4 "labels" and
    "image-label": https://ngff.openmicroscopy.org/0.4/#labels-md).
    """
    store, options = _location(image_path)
    root = zarr.open_group(store, mode="a", zarr_format=2, storage_options=options)
    labels = root.require_group("labels")
    attributes: dict[str, Any] = labels.attrs.asdict()
    names = list(attributes.get("labels", []))
    if name not in names:
        labels.attrs["labels"] = [*names, name]
    group = labels.create_group(name, overwrite=True)
    image_label: dict[str, Any] = {"version": "0.4", "source": {"image": "../../"}}
    if colors:
        image_label["colors"] = colors
    group.attrs.update({"multiscales": multiscales(spec), "image-label": image_label})
    return _create_array(group, spec)


def _create_array(
    group: zarr.Group,
    spec: ImageSpec,
    name: str = ARRAY_NAME,
    shape_zyx: tuple[int, int, int] | None = None,
) -> zarr.Array:
    """s0 as the spec says; a smaller pyramid level with the same chunks, clipped to it."""
    shape, chunks = spec.shape_zyx, spec.chunks_zyx
    if shape_zyx is not None:
        shape = shape_zyx
        chunks = tuple(max(1, min(c, n)) for c, n in zip(chunks, shape, strict=True))  # type: ignore[assignment]  # 3 items, typed tuple[int, ...]
    return group.create_array(
        name,
        shape=shape,
        chunks=chunks,
        dtype=spec.dtype,
        compressors=COMPRESSOR,
        fill_value=0,
        chunk_key_encoding={"name": "v2", "separator": "/"},
    )


def add_levels(
    group: zarr.Group,
    spec: ImageSpec,
    shapes_zyx: list[tuple[int, int, int]],
    factors: list[Factors],
) -> list[zarr.Array]:
    """Empty arrays s1, s2, ... of the given shapes beside s0 (same dtype, chunking and
    compressor), and `multiscales` listing every level."""
    arrays = [
        _create_array(group, spec, level_name(index), shape)
        for index, shape in enumerate(shapes_zyx, start=1)
    ]
    group.attrs["multiscales"] = multiscales(spec, [(1, 1, 1), *factors])
    return arrays


def open_group(path: UPath, mode: AccessMode = "r") -> zarr.Group:
    """The zarr v2 group at `path` (an image, its `labels`, or a label image)."""
    store, options = _location(path)
    return zarr.open_group(store, mode=mode, zarr_format=2, storage_options=options)


def open_image(path: UPath, mode: AccessMode = "r") -> tuple[zarr.Group, zarr.Array]:
    group = open_group(path, mode)
    array = group[ARRAY_NAME]
    if not isinstance(array, zarr.Array):
        raise ValueError(f"{path}: {ARRAY_NAME} is a group where an image array belongs")
    return group, array


def stored_size(path: UPath) -> tuple[int, int]:
    """Objects and bytes the image occupies in storage (our own output, so listing is cheap)."""
    sizes = [info["size"] for info in path.fs.find(path.path, detail=True).values()]
    return len(sizes), sum(sizes)


def central_slice(path: UPath) -> np.ndarray:
    """The middle z slice of a stored image (one slab of chunks is read)."""
    _, array = open_image(path)
    return np.asarray(array[array.shape[0] // 2])
