"""EBI's file server and IDR's web client, as far as idr0086 uses them.

The TIFFs sit at their real path and are what the real ones are: big-endian ImageJ 1.52p
stacks whose resolution tags and `spacing` give the pixel size in µm (the real ones: 50
px/µm, spacing 0.02; xy is 184 pages of 775 × 1121, xz 775 pages of 184 × 1121, i.e. its
pages are z-x planes along y). IDR's `imgData` JSON carries `pixel_size` {x, y, z} in µm,
each possibly null, with no unit key, as IDR serves it; its values here differ from the
documented 20 nm (the code must read them, not assume them), and the TIFFs agree with them.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping

import numpy as np
import tifffile

from em_assets_tests.replicas.http_server import ReplicaHTTPServer

IDR_DIRECTORY = (
    "/pub/databases/IDR/idr0086-miron-micrographs/20200610-ftp/experimentD/"
    "Miron_FIB-SEM/Miron_FIB-SEM_processed/"
)
IDR_XY = "Figure_S3B_FIB-SEM_U2OS_20x20x20nm_xy.tif"
IDR_XZ = "Figure_S3B_FIB-SEM_U2OS_20x20x20nm_xz.tif"
IDR_IMAGE_PATH = "/webclient/imgData/9846137/"
XY_SHAPE = (9, 31, 45)  # z, y, x: the real xy stack is 184 x 775 x 1121
XZ_SHAPE = (31, 9, 45)
PIXEL_SIZE_UM = {"x": 0.021, "y": 0.021, "z": 0.019}


def image_data(
    shape_zyx: tuple[int, int, int] = XY_SHAPE,
    pixel_size_um: Mapping[str, float | None] = PIXEL_SIZE_UM,
) -> dict:
    """IDR's imgData document for image 9846137, in the shape IDR serves it."""
    z, y, x = shape_zyx
    return {
        "id": 9846137,
        "meta": {
            "imageName": IDR_XY,
            "imageId": 9846137,
            "datasetName": "Miron_FIB-SEM",
            "projectName": "idr0086-miron-micrographs/experimentD",
            "pixelsType": "uint8",
        },
        "pixel_size": dict(pixel_size_um),
        "size": {"width": x, "height": y, "z": z, "t": 1, "c": 1},
        "channels": [{"label": "0", "active": True, "window": {"min": 0, "max": 255}}],
        "rdefs": {"model": "greyscale", "defaultZ": z // 2, "defaultT": 0},
    }


def imagej_stack(pages: np.ndarray, column_um: float, row_um: float, spacing_um: float) -> bytes:
    """A big-endian ImageJ 1.52p stack: resolution tags in px/µm, `spacing` between pages."""
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer,
        pages,
        byteorder=">",
        imagej=True,
        resolution=(1 / column_um, 1 / row_um),
        metadata={"axes": "ZYX", "spacing": spacing_um, "unit": "um", "ImageJ": "1.52p"},
    )
    return buffer.getvalue()


def idr_files(pixel_size_um: dict[str, float] = PIXEL_SIZE_UM) -> dict[str, bytes]:
    """The xy stack (pages along z) and the xz stack (z-x pages along y), calibrated alike."""
    rng = np.random.default_rng(86)
    x, y, z = (pixel_size_um[axis] for axis in "xyz")
    return {
        IDR_XY: imagej_stack(rng.integers(0, 256, XY_SHAPE, dtype=np.uint8), x, y, z),
        IDR_XZ: imagej_stack(rng.integers(0, 256, XZ_SHAPE, dtype=np.uint8), x, z, y),
    }


def serve_idr_files(server: ReplicaHTTPServer, files: dict[str, bytes]) -> None:
    for name, body in files.items():
        server.put(IDR_DIRECTORY + name, body, content_type="image/tiff")


def serve_idr(server: ReplicaHTTPServer) -> dict[str, bytes]:
    files = idr_files()
    serve_idr_files(server, files)
    server.put(IDR_IMAGE_PATH, json.dumps(image_data()).encode(), content_type="application/json")
    return files
