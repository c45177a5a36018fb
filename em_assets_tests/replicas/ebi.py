"""EBI's file server and IDR's web client, as far as idr0086 uses them.

The TIFFs sit at their real path; IDR's `imgData` JSON carries a pixel size that differs
from the documented 20 nm (the code must read it, not assume it).
"""

from __future__ import annotations

import json

import numpy as np

from em_assets_tests.replicas.epfl import tiff_stack
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


def image_data(shape_zyx: tuple[int, int, int] = XY_SHAPE) -> dict:
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
        "pixel_size": {**PIXEL_SIZE_UM, "unit_x": "MICROMETER"},
        "size": {"width": x, "height": y, "z": z, "t": 1, "c": 1},
        "channels": [{"label": "0", "active": True, "window": {"min": 0, "max": 255}}],
        "rdefs": {"model": "greyscale", "defaultZ": z // 2, "defaultT": 0},
    }


def idr_files() -> dict[str, bytes]:
    rng = np.random.default_rng(86)
    return {
        IDR_XY: tiff_stack(rng.integers(0, 256, XY_SHAPE, dtype=np.uint8)),
        IDR_XZ: tiff_stack(rng.integers(0, 256, XZ_SHAPE, dtype=np.uint8)),
    }


def serve_idr(server: ReplicaHTTPServer) -> dict[str, bytes]:
    files = idr_files()
    for name, body in files.items():
        server.put(IDR_DIRECTORY + name, body, content_type="image/tiff")
    server.put(IDR_IMAGE_PATH, json.dumps(image_data()).encode(), content_type="application/json")
    return files
