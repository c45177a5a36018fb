"""The jrc_mus-liver OME-Zarr pyramid in a moto S3 bucket, laid out as the real one is.

zarr v2 with '/' chunk keys and a real compressor, an NGFF `multiscales` attribute whose
scale and translation deliberately differ from the documented 8 nm (the code must read
them), tissue beside zero padding, and a bucket policy that lets anonymous readers get and
head objects but not list: a reader that lists the prefix fails here, as it would be
hopeless against the millions of real objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numcodecs
import numpy as np
import zarr

from em_assets_tests.replicas.s3 import S3Replica

BUCKET = "janelia-cosem-datasets"
CONTAINER = "jrc_mus-liver/jrc_mus-liver.zarr"
EM_GROUP = "recon-1/em/fibsem-uint8"
SHAPE_ZYX = (160, 192, 224)
CHUNKS_ZYX = (64, 64, 64)
SCALE_ZYX = (8.5, 7.5, 7.5)
TRANSLATION_ZYX = (12.0, 24.0, 36.0)
LEVELS = 3


@dataclass(frozen=True)
class ZarrReplica:
    url: str
    levels: list[np.ndarray]  # z, y, x per level, finest first
    scales: list[tuple[float, float, float]]  # z, y, x
    translations: list[tuple[float, float, float]]  # z, y, x


def tissue(shape_zyx: tuple[int, int, int], seed: int = 11) -> np.ndarray:
    """Textured tissue over the first 70 % of x; zeros (outside the sample) beyond."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*(np.arange(n) for n in shape_zyx), indexing="ij")
    texture = 120 + 60 * np.sin(x / 6.0 + z / 13.0) * np.cos(y / 8.0) + rng.normal(0, 5, shape_zyx)
    volume = np.clip(texture, 1, 255).astype(np.uint8)
    volume[:, :, int(shape_zyx[2] * 0.7) :] = 0
    return volume


def write_pyramid(s3: S3Replica) -> ZarrReplica:
    s3.create_bucket(BUCKET, public=True, listable=False)
    url = f"s3://{BUCKET}/{CONTAINER}"
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": s3.endpoint_url, "region_name": "us-east-1"},
    }
    root = zarr.open_group(url, mode="w", zarr_format=2, storage_options=options)
    group = root.require_group("recon-1").require_group("em").require_group("fibsem-uint8")
    levels, scales, translations = [], [], []
    datasets: list[dict[str, Any]] = []
    for index, data in enumerate(pyramid_levels()):
        factor = 2**index
        scale = tuple(s * factor for s in SCALE_ZYX)
        # Downsampled voxels are centred on the blocks they average: a half-voxel shift.
        translation = tuple(
            t + (factor - 1) * s / 2 for t, s in zip(TRANSLATION_ZYX, SCALE_ZYX, strict=True)
        )
        array = group.create_array(
            f"s{index}",
            shape=data.shape,
            chunks=CHUNKS_ZYX,
            dtype="uint8",
            compressors=numcodecs.Zstd(level=6),  # as Janelia writes them
            fill_value=0,
            chunk_key_encoding={"name": "v2", "separator": "/"},
        )
        array[:] = data
        levels.append(data)
        scales.append(scale)
        translations.append(translation)
        datasets.append(
            {
                "path": f"s{index}",
                "coordinateTransformations": [
                    {"type": "scale", "scale": list(scale)},
                    {"type": "translation", "translation": list(translation)},
                ],
            }
        )
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "name": "fibsem-uint8",
            "axes": [{"name": a, "type": "space", "unit": "nanometer"} for a in "zyx"],
            "datasets": datasets,
            "coordinateTransformations": [{"type": "scale", "scale": [1.0, 1.0, 1.0]}],
        }
    ]
    return ZarrReplica(url, levels, scales, translations)


@cache
def pyramid_levels() -> tuple[np.ndarray, ...]:
    """The pyramid's voxels, finest first: computed once per session (about 1 s of CPU,
    and the replica is written for some forty tests); seeded, so every test sees the same
    voxels. Read-only, so no test can change what the next one is compared with."""
    levels = [tissue(SHAPE_ZYX)]
    while len(levels) < LEVELS:
        levels.append(_downsample(levels[-1]))
    for level in levels:
        level.flags.writeable = False
    return tuple(levels)


def _downsample(volume: np.ndarray) -> np.ndarray:
    z, y, x = (n // 2 * 2 for n in volume.shape)
    trimmed = volume[:z, :y, :x].astype(np.float32)
    return trimmed.reshape(z // 2, 2, y // 2, 2, x // 2, 2).mean(axis=(1, 3, 5)).astype(np.uint8)
