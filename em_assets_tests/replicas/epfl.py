"""The EPFL CVLab server's hippocampus directory, with small stacks in the real TIFF layout."""

from __future__ import annotations

import io

import numpy as np
import tifffile

from em_assets_tests.replicas.http_server import ReplicaHTTPServer

EPFL_DIRECTORY = "/groups/c/cv/cvlab-unit/www/data/ ElectronMicroscopy_Hippocampus/"
STACK_SHAPE = (7, 40, 56)  # z, y, x: the real files are 165 x 768 x 1024


def tiff_stack(volume: np.ndarray) -> bytes:
    """A multi-page uint8 TIFF, one page per z slice, as the real files are."""
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, volume, photometric="minisblack")
    return buffer.getvalue()


def epfl_stacks(seed: int = 5) -> dict[str, bytes]:
    """All five files: grey-level stacks and 0/255 masks, different content in each."""
    rng = np.random.default_rng(seed)
    files = {}
    for name in ("training", "testing", "volumedata"):
        image = rng.integers(0, 256, size=STACK_SHAPE, dtype=np.uint8)
        files[f"{name}.tif"] = tiff_stack(image)
        if name != "volumedata":
            mask = np.where(image > 200, 255, 0).astype(np.uint8)
            files[f"{name}_groundtruth.tif"] = tiff_stack(mask)
    return files


def serve_epfl(server: ReplicaHTTPServer) -> dict[str, bytes]:
    files = epfl_stacks()
    for name, body in files.items():
        server.put(EPFL_DIRECTORY + name, body, content_type="image/tiff")
    return files


def epfl_base_url(server: ReplicaHTTPServer) -> str:
    return server.url(EPFL_DIRECTORY)
