"""Benchmark-sized replica data on disk, written in pieces so building it needs little memory.

One directory tree holds everything the HTTP replica serves, at the real paths: the EPFL
stacks, the EMPIAR and IDR documents and files, and a hemibrain-like precomputed volume.
The OpenOrganelle pyramid goes into the S3 replica.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import tifffile
import zarr

from em_assets_tests.replicas.ebi import IDR_DIRECTORY, IDR_IMAGE_PATH, idr_files, image_data
from em_assets_tests.replicas.empiar import (
    API_ENTRY,
    DATA_DIRECTORY,
    SLICES,
    autoindex,
    entry_json,
    slices,
)
from em_assets_tests.replicas.epfl import EPFL_DIRECTORY
from em_assets_tests.replicas.precomputed import LAYER_PATH

PAGE = (1024, 1024)


def texture(shape_zyx: tuple[int, int, int], z0: int, seed: int) -> np.ndarray:
    """Tissue-like grey levels (smooth waves plus noise); cheap to make slab by slab."""
    rng = np.random.default_rng(seed + z0)
    z = np.arange(z0, z0 + shape_zyx[0], dtype=np.float32)[:, None, None]
    y = np.arange(shape_zyx[1], dtype=np.float32)[None, :, None]
    x = np.arange(shape_zyx[2], dtype=np.float32)[None, None, :]
    waves = 128 + 50 * np.sin(x / 9.0 + z / 17.0) * np.cos(y / 7.0)
    return np.clip(waves + rng.normal(0, 6, shape_zyx).astype(np.float32), 1, 255).astype(np.uint8)


def write_stack(path: Path, target_bytes: int) -> int:
    """A multi-page uint8 TIFF of about `target_bytes`, one 1024 x 1024 page at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pages = max(1, target_bytes // (PAGE[0] * PAGE[1]))
    with tifffile.TiffWriter(path) as tif:
        for index in range(pages):
            tif.write(texture((1, *PAGE), index, 1)[0], photometric="minisblack", contiguous=True)
    return path.stat().st_size


def _put(tree: Path, url_path: str, body: bytes, index: str | None = None) -> None:
    """Store `body` where the replica serves `url_path` (directories answer with `index.*`)."""
    target = tree / url_path.lstrip("/")
    if index:
        target = target / index
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(body)


def write_documents(tree: Path) -> None:
    """EMPIAR (entry, listing, DM3 slices) and IDR (image JSON, TIFFs) at their real paths."""
    _put(tree, API_ENTRY, json.dumps(entry_json()).encode(), "index.json")
    listing = autoindex([*SLICES, "F57-8_test1.xml", "trakem2/"])
    _put(tree, DATA_DIRECTORY, listing.encode(), "index.html")
    for name, body in slices().items():
        _put(tree, DATA_DIRECTORY + name, body)
    for name, body in idr_files().items():
        _put(tree, IDR_DIRECTORY + name, body)
    _put(tree, IDR_IMAGE_PATH, json.dumps(image_data()).encode(), "index.json")


def write_epfl(tree: Path, sizes: dict[str, int]) -> dict[str, int]:
    directory = tree / EPFL_DIRECTORY.lstrip("/")
    return {name: write_stack(directory / name, size) for name, size in sizes.items()}


def write_precomputed(tree: Path, edge: int, mips: int = 4) -> Path:
    """An unsharded JPEG layer of `edge`³ voxels, 64³ chunks, written one z slab at a time."""
    from cloudvolume import CloudVolume

    directory = tree / LAYER_PATH
    url = f"file://{directory}"
    info = CloudVolume.create_new_info(
        num_channels=1, layer_type="image", data_type="uint8", encoding="jpeg",
        resolution=[8, 8, 8], voxel_offset=[0, 0, 0], volume_size=[edge] * 3,
        chunk_size=[64, 64, 64],
    )  # fmt: skip
    volume = CloudVolume(url, info=info, compress=False, progress=False)
    for mip in range(1, mips):
        volume.add_scale([2**mip] * 3, chunk_size=[64, 64, 64], encoding="jpeg")
    volume.commit_info()
    for mip in range(mips):
        level = CloudVolume(url, mip=mip, compress=False, progress=False)
        size = level.volume_size
        step = 64
        for z0 in range(0, size[2], step):
            thickness = min(step, size[2] - z0)
            slab = texture((thickness, size[1], size[0]), z0 * 2**mip, 7)
            level[:, :, z0 : z0 + thickness] = slab.transpose(2, 1, 0)
    return directory


def write_zarr_pyramid(url: str, options: dict, edge: int, levels: int = 3) -> None:
    """The OpenOrganelle layout (zarr v2, '/' keys, zstd) with `edge`³ voxels at s0."""
    root = zarr.open_group(url, mode="w", zarr_format=2, storage_options=options)
    group = root.require_group("recon-1").require_group("em").require_group("fibsem-uint8")
    datasets: list[dict[str, Any]] = []
    for index in range(levels):
        factor = 2**index
        size = max(64, edge // factor)
        array = group.create_array(
            f"s{index}", shape=(size,) * 3, chunks=(64, 64, 64), dtype="uint8",
            compressors=numcodecs.Zstd(level=6), fill_value=0,
            chunk_key_encoding={"name": "v2", "separator": "/"},
        )  # fmt: skip
        for z0 in range(0, size, 64):
            thickness = min(64, size - z0)
            array[z0 : z0 + thickness] = texture((thickness, size, size), z0 * factor, 9)
        datasets.append(
            {
                "path": f"s{index}",
                "coordinateTransformations": [
                    {"type": "scale", "scale": [8.0 * factor] * 3},
                    {"type": "translation", "translation": [4.0 * (factor - 1)] * 3},
                ],
            }
        )
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": [{"name": a, "type": "space", "unit": "nanometer"} for a in "zyx"],
            "datasets": datasets,
        }
    ]
