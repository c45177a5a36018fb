"""DigitalMicrograph (DM3) headers: image geometry, pixel type and calibration, via ncempy.

ncempy parses the tag tree without reading the pixel data. It needs a real file (it memory
maps it), so a DM3 on object storage is copied to a temporary file first; that copy is
bounded by the size of one slice, not of the dataset.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from upath import UPath

from em_assets.formats.errors import CorruptFileError

# DigitalMicrograph image data type codes (the format's own numbering).
_DM_DTYPES = {
    1: "int16", 2: "float32", 3: "complex64", 6: "uint8", 7: "int32", 9: "int8",
    10: "uint16", 11: "uint32", 12: "float64", 13: "complex128",
}  # fmt: skip


@dataclass(frozen=True)
class Dm3Header:
    shape: tuple[int, ...]
    """rows, columns (y, x) for one image."""
    dtype: str
    pixel_size: tuple[float, float]
    """x, y, in `unit`"""
    unit: str
    slice_thickness_nm: float | None = None
    """The section thickness a 3View image states (nm, `SLICE_THICKNESS_TAG`), if it does."""


# Where Gatan's 3View software records the section thickness (nm) under an image's
# `ImageTags` (a public tag dump of an EMPIAR-11759 slice carries it, and the same value
# as `Meta Data.Dimension info.2`; see notes/sources.md).
SLICE_THICKNESS_TAG = "SBFSEM.Record.Slice thickness"


def _slice_thickness(tags: dict, index: int) -> float | None:
    # ncempy numbers the images of `ImageList` from 1.
    value = tags.get(f".ImageList.{index + 1}.ImageTags.{SLICE_THICKNESS_TAG}")
    if isinstance(value, int | float | np.number) and value > 0:
        return float(f"{float(value):.7g}")
    return None


def _parse(local: Path, name: str) -> Dm3Header:
    # Imported here: ncempy pulls in scipy and takes ~0.6 s, paid by every process that
    # loads the code location even when no DM3 is read.
    from ncempy.io.dm import fileDM

    try:
        dm = fileDM(local)
    except (OSError, ValueError, IndexError, KeyError) as error:
        raise CorruptFileError(f"{name} is not a readable DM3 file: {error}") from error
    if not dm.numObjects:
        raise CorruptFileError(f"{name} holds no image")
    # The first object is usually a thumbnail; ncempy skips it the same way.
    index = 0 if dm.numObjects == 1 else 1
    ndim = dm.dataShape[index]
    first_axis = sum(dm.dataShape[:index])
    scales = dm.scale[first_axis : first_axis + ndim]
    units = dm.scaleUnit[first_axis : first_axis + ndim]
    sizes = [dm.xSize[index], dm.ySize[index], dm.zSize[index]][:ndim]
    if dm.dataType[index] not in _DM_DTYPES or len(scales) < 2:
        raise CorruptFileError(f"{name}: unsupported image (type {dm.dataType[index]}, {ndim}-D)")
    unit = units[0]
    thickness = _slice_thickness(dm.allTags, index)
    return Dm3Header(
        shape=tuple(int(n) for n in reversed(sizes)),
        dtype=str(np.dtype(_DM_DTYPES[dm.dataType[index]])),
        # Calibrations are float32 in the file: keep the digits it actually holds.
        pixel_size=(float(f"{scales[0]:.7g}"), float(f"{scales[1]:.7g}")),
        unit=unit.decode() if isinstance(unit, bytes) else str(unit),
        slice_thickness_nm=thickness,
    )


def read_dm3_header(path: UPath) -> Dm3Header:
    with _local(path) as local:
        return _parse(local, path.name)


def read_dm3_image(path: UPath) -> np.ndarray:
    """The image itself (rows x columns), e.g. for a thumbnail."""
    from ncempy.io.dm import fileDM

    with _local(path) as local, fileDM(local) as dm:
        return np.array(dm.getDataset(0)["data"])


@contextmanager
def _local(path: UPath) -> Iterator[Path]:
    """`path` as a local file: itself, or a temporary copy of a remote one."""
    if path.protocol in ("", "file", "local"):
        yield Path(path.path)
        return
    with tempfile.TemporaryDirectory() as scratch:
        local = Path(scratch) / path.name
        with path.open("rb") as source, local.open("wb") as copy:
            shutil.copyfileobj(source, copy, length=1024 * 1024)
        yield local
