"""Stored source files as a sequence of z planes, read one plane at a time.

A 3.3 GB TIFF stack or a thousand 5496 × 5500 DM3 slices never sit in memory whole: the
converter asks for planes in z order and keeps only as many as one chunk layer needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import tifffile
from upath import UPath

from em_assets.formats.dm3 import read_dm3_image
from em_assets.formats.errors import CorruptFileError


class InconsistentSliceError(ValueError):
    """One slice of a stack does not have the shape or pixel type of the others."""


@dataclass(frozen=True)
class Planes:
    """Geometry of a stack and how to read it plane by plane (z order)."""

    shape_zyx: tuple[int, int, int]
    dtype: np.dtype
    """Native byte order: a big-endian TIFF is converted, not stored big-endian."""
    paths: tuple[UPath, ...]
    kind: str
    """"tiff" (one multi-page file) or "dm3" (one file per plane)."""

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.kind == "tiff":
            yield from _tiff_planes(self.paths[0], self.shape_zyx[0], self.dtype)
        else:
            yield from _dm3_planes(self.paths, self.shape_zyx[1:], self.dtype)


def _native(dtype: np.dtype) -> np.dtype:
    return dtype.newbyteorder("=")


def tiff_planes(path: UPath) -> Planes:
    """A grey-level TIFF stack whose pages are its z planes (EPFL, IDR's xy stack)."""
    try:
        with path.open("rb") as handle, tifffile.TiffFile(handle) as tif:
            series = tif.series[0]
            shape = tuple(int(n) for n in series.shape)
            pages = len(series.pages)
            dtype = series.dtype
    except (tifffile.TiffFileError, ValueError, IndexError, EOFError) as error:
        raise CorruptFileError(f"{path} is not a readable TIFF: {error}") from error
    return stack_planes(path, shape, pages, dtype)


def stack_planes(path: UPath, shape: tuple[int, ...], pages: int, dtype: np.dtype | str) -> Planes:
    """The planes of a TIFF stack whose header said `shape`, `pages` and `dtype` (read just
    now by `tiff_planes`, or recorded in the manifest from the same bytes): nothing is read
    until the planes are."""
    dtype = _native(np.dtype(dtype))
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or pages != shape[0]:
        raise CorruptFileError(
            f"{path.name}: series of shape {shape} in {pages} pages is not a grey-level stack "
            "of one page per z plane; only such stacks are converted to OME-Zarr"
        )
    return Planes(shape, dtype, (path,), "tiff")


def _tiff_planes(path: UPath, count: int, dtype: np.dtype) -> Iterator[np.ndarray]:
    with path.open("rb") as handle, tifffile.TiffFile(handle) as tif:
        pages = tif.series[0].pages
        for index in range(count):
            page = pages[index]
            if page is None:  # tifffile's way of saying the page could not be read
                raise ValueError(f"{path.name}: page {index} of the stack cannot be read")
            yield np.asarray(page.asarray(), dtype=dtype)


def dm3_planes(paths: list[UPath], shape_yx: tuple[int, int], dtype: str) -> Planes:
    """DM3 slices stacked in the order given (name order for EMPIAR), each one plane.

    `shape_yx` and `dtype` are the first slice's, from its header; every slice is checked
    against them as it is read, and one that differs is named.
    """
    return Planes((len(paths), *shape_yx), np.dtype(dtype), tuple(paths), "dm3")


def _dm3_planes(
    paths: tuple[UPath, ...], shape_yx: tuple[int, ...], dtype: np.dtype
) -> Iterator[np.ndarray]:
    for path in paths:
        plane = read_dm3_image(path)
        if plane.shape != tuple(shape_yx) or _native(plane.dtype) != dtype:
            raise InconsistentSliceError(
                f"{path.name} is {_dims(plane.shape)} {plane.dtype}, but the stack's slices "
                f"are {_dims(shape_yx)} {dtype}; it cannot be "
                "stacked into one volume (remove it from the dataset or fetch it again)"
            )
        yield np.asarray(plane, dtype=dtype)


def _dims(shape: tuple[int, ...]) -> str:
    return " × ".join(str(n) for n in shape)
