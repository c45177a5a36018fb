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


# Length units as ImageJ writes them in its description (`unit=`), in nanometres.
_UNIT_IN_NM = {
    "nm": 1.0, "nanometer": 1.0, "nanometre": 1.0,
    "um": 1000.0, "µm": 1000.0, "\u03bcm": 1000.0, "micron": 1000.0, "micrometer": 1000.0,
    "mm": 1e6, "cm": 1e7, "inch": 2.54e7,
}  # fmt: skip
# TIFF ResolutionUnit when no ImageJ unit is given: 2 inch, 3 centimetre (1 means none).
_RESOLUTION_UNIT = {2: "inch", 3: "cm"}


@dataclass(frozen=True)
class TiffCalibration:
    """What a TIFF's own tags say about its pixel size, in nm."""

    column_nm: float
    """Across a page (XResolution)."""
    row_nm: float
    """Down a page (YResolution)."""
    page_nm: float | None
    """Between pages (ImageJ `spacing`), if stated."""
    stated_as: str
    """The tags as written, e.g. '50 px/um, spacing 0.02 um (ImageJ 1.52p, big-endian)'."""


def read_tiff_calibration(path: UPath) -> TiffCalibration | None:
    """The pixel size from the first page's resolution tags and, for ImageJ stacks, the
    description's `unit` and `spacing`; None when the file states no physical unit."""
    try:
        with path.open("rb") as handle, tifffile.TiffFile(handle) as tif:
            tags = tif.pages.first.tags
            imagej = tif.imagej_metadata or {}
            byteorder = "big-endian" if tif.byteorder == ">" else "little-endian"
            x_tag, y_tag = tags.get("XResolution"), tags.get("YResolution")
            unit_tag = tags.get("ResolutionUnit")
            resolution_unit = int(unit_tag.value) if unit_tag is not None else 2
    except (tifffile.TiffFileError, ValueError, IndexError, EOFError) as error:
        raise CorruptFileError(f"{path} is not a readable TIFF: {error}") from error
    unit = str(imagej.get("unit") or _RESOLUTION_UNIT.get(resolution_unit, ""))
    scale = _UNIT_IN_NM.get(unit.lower()) or _UNIT_IN_NM.get(unit)
    if scale is None or x_tag is None or y_tag is None:
        return None
    x_per_unit = _rational(x_tag.value)
    y_per_unit = _rational(y_tag.value)
    if not x_per_unit > 0 or not y_per_unit > 0:
        return None
    spacing = imagej.get("spacing")
    page_nm = float(spacing) * scale if isinstance(spacing, int | float) and spacing > 0 else None
    origin = f"ImageJ {imagej['ImageJ']}, " if "ImageJ" in imagej else ""
    return TiffCalibration(
        column_nm=round(scale / x_per_unit, 6),
        row_nm=round(scale / y_per_unit, 6),
        page_nm=None if page_nm is None else round(page_nm, 6),
        stated_as=(
            f"{x_per_unit:g} × {y_per_unit:g} px/{unit}"
            + (f", spacing {spacing:g} {unit}" if page_nm is not None else "")
            + f" ({origin}{byteorder})"
        ),
    )


def _rational(value: object) -> float:
    if isinstance(value, tuple) and len(value) == 2 and value[1]:
        return value[0] / value[1]
    return float(value) if isinstance(value, int | float) else 0.0
