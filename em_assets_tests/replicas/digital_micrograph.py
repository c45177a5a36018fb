"""Writing DigitalMicrograph 3 (.dm3) files, so the EMPIAR replica serves files readers parse.

No DM3 writer exists on PyPI. This writes the tag tree Gatan's software writes, as far as
readers use it: a thumbnail image first and the real image second under `ImageList`, each
with `ImageData` holding `Calibrations.Dimension` (origin, scale, units per axis), `Data`,
`DataType` and `Dimensions`, and a root `Thumbnails` group pointing at the thumbnail
(`Thumbnails.0.ImageIndex = 0`). Tag headers are big-endian, values little-endian, as in
files written on a PC.

Like the real EMPIAR-11759 slices (a public tag dump of `F57-8_test1_3VBSED_slice_0002.dm3`,
see notes/sources.md), the image is calibrated in µm (unit "µm", U+00B5, stored as UTF-16)
and a 3View image carries the section thickness in nm twice, as
`ImageTags.Meta Data.Dimension info.2` and `ImageTags.SBFSEM.Record.Slice thickness`.
"""

from __future__ import annotations

import struct

import numpy as np

GROUP, DATA = 20, 21
LONG, FLOAT, USHORT, OCTET = 3, 6, 4, 10
ARRAY = 20
# DigitalMicrograph image data types, and the tag element type used to store their pixels.
IMAGE_TYPES = {np.dtype("uint8"): (6, OCTET), np.dtype("uint16"): (10, USHORT)}
RGBA_THUMBNAIL = 23
_VALUE_FORMAT = {LONG: "<i", FLOAT: "<f"}


def _label(name: str) -> bytes:
    encoded = name.encode("ascii")
    return struct.pack(">H", len(encoded)) + encoded


def _group(name: str, entries: list[bytes]) -> bytes:
    return (
        struct.pack(">B", GROUP)
        + _label(name)
        + struct.pack(">BBI", 0, 1, len(entries))
        + b"".join(entries)
    )


def _value(name: str, kind: int, value: float) -> bytes:
    payload = struct.pack(_VALUE_FORMAT[kind], value)
    return struct.pack(">B", DATA) + _label(name) + b"%%%%" + struct.pack(">II", 1, kind) + payload


def _array(name: str, element: int, values: np.ndarray) -> bytes:
    info = struct.pack(">IIII", 3, ARRAY, element, values.size)
    return (
        struct.pack(">B", DATA)
        + _label(name)
        + b"%%%%"
        + info
        + values.astype(values.dtype.newbyteorder("<")).tobytes()
    )


def _text(name: str, text: str) -> bytes:
    return _array(name, USHORT, np.frombuffer(text.encode("utf-16-le"), dtype="<u2"))


def _image(
    pixels: np.ndarray,
    data_type: int,
    element: int,
    scale: float,
    unit: str,
    image_tags: list[bytes] | None = None,
) -> bytes:
    rows, columns = pixels.shape
    axis = [_value("Origin", FLOAT, 0.0), _value("Scale", FLOAT, scale), _text("Units", unit)]
    image_data = _group(
        "ImageData",
        [
            _group("Calibrations", [_group("Dimension", [_group("", axis), _group("", axis)])]),
            _array("Data", element, pixels.ravel()),
            _value("DataType", LONG, data_type),
            _group("Dimensions", [_value("", LONG, columns), _value("", LONG, rows)]),
            _value("PixelDepth", LONG, pixels.dtype.itemsize),
        ],
    )
    return _group("", [image_data, _group("ImageTags", image_tags or [])])


def _sbfsem_tags(slice_thickness_nm: float) -> list[bytes]:
    """The 3View tags that state the section thickness (nm)."""
    return [
        _group(
            "Meta Data",
            [_group("Dimension info", [_value("2", FLOAT, slice_thickness_nm)])],
        ),
        _group(
            "SBFSEM",
            [_group("Record", [_value("Slice thickness", FLOAT, slice_thickness_nm)])],
        ),
    ]


def dm3_bytes(
    image: np.ndarray,
    pixel_size: float,
    unit: str = "µm",
    slice_thickness_nm: float | None = None,
) -> bytes:
    """A DM3 file holding `image` (rows x columns, uint8 or uint16) at `pixel_size` `unit`,
    with the 3View section-thickness tags when `slice_thickness_nm` is given."""
    if image.ndim != 2 or image.dtype not in IMAGE_TYPES:
        raise ValueError(f"need a 2-D uint8 or uint16 image, got {image.ndim}-D {image.dtype}")
    data_type, element = IMAGE_TYPES[image.dtype]
    thumbnail = np.zeros((8, 8), dtype="<u4")
    tags = _sbfsem_tags(slice_thickness_nm) if slice_thickness_nm is not None else []
    images = [
        _image(thumbnail, RGBA_THUMBNAIL, 5, 1.0, ""),  # 5: ULONG, one RGBA pixel each
        _image(image, data_type, element, pixel_size, unit, tags),
    ]
    thumbnails = _group("Thumbnails", [_group("", [_value("ImageIndex", LONG, 0)])])
    root = struct.pack(">BBI", 0, 1, 2) + _group("ImageList", images) + thumbnails
    tail = b"\x00" * 8
    return struct.pack(">III", 3, len(root) + len(tail) + 4, 1) + root + tail
