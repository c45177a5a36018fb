"""TIFF stacks: geometry and pixel type from the header and page directory only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tifffile
from upath import UPath

from em_assets.formats.errors import CorruptFileError


@dataclass(frozen=True)
class StackHeader:
    shape: tuple[int, ...]
    """z, y, x for a stack of 2-D pages."""
    dtype: str
    pages: int


def read_tiff_header(path: UPath) -> StackHeader:
    """Shape, dtype and page count of a (multi-page) TIFF; reads IFDs, not pixel data."""
    try:
        with path.open("rb") as handle, tifffile.TiffFile(handle) as tif:
            series = tif.series[0]
            return StackHeader(
                shape=tuple(int(n) for n in series.shape),
                dtype=str(series.dtype),
                pages=len(tif.pages),
            )
    except (tifffile.TiffFileError, ValueError, IndexError, EOFError) as error:
        raise CorruptFileError(f"{path} is not a readable TIFF: {error}") from error


def tiff_shape_and_dtype(path: UPath) -> tuple[list[int], str]:
    header = read_tiff_header(path)
    return list(header.shape), header.dtype


def central_page(path: UPath) -> np.ndarray:
    """The middle page of a stack (one page is read, not the stack)."""
    with path.open("rb") as handle, tifffile.TiffFile(handle) as tif:
        return tif.pages[len(tif.pages) // 2].asarray()
