"""Neuroglancer precomputed volumes (sharded or not) read through cloud-volume.

Reads never fill: cloud-volume's `fill_missing=True` turns 403, 404 and network trouble
into zeros, which would put fabricated background into a training set. Here a missing or
forbidden chunk is an error that names the region.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from em_assets.crops.geometry import Box, Vec
from em_assets.settings import ConfigurationError

if TYPE_CHECKING:
    from cloudvolume import CloudVolume


class MissingVolumeDataError(RuntimeError):
    """Part of a volume could not be read; nothing is filled in its place."""


def _open(cloudpath: str, mip: int, info: dict[str, Any] | None) -> CloudVolume:
    # Imported here: cloud-volume takes ~0.5 s to import, paid by every process that loads
    # the code location (the web server, each run, each step) even when no crop is taken.
    from cloudvolume import CloudVolume

    return CloudVolume(
        cloudpath,
        mip=mip,
        info=info,
        provenance={},  # not used here; saves a request per level
        fill_missing=False,
        bounded=True,
        progress=False,
        cache=False,
        parallel=1,
    )


@dataclass
class PrecomputedLevel:
    """One mip of a precomputed image layer, as a `VolumeLevel`.

    Blocks are read from several threads; each thread gets its own CloudVolume, since one
    instance is not meant to serve concurrent reads.
    """

    cloudpath: str
    mip: int
    info: dict[str, Any]
    _local: threading.local = field(default_factory=threading.local, init=False, repr=False)

    @property
    def volume(self) -> CloudVolume:
        if not hasattr(self._local, "volume"):
            self._local.volume = _open(self.cloudpath, self.mip, self.info)
        return self._local.volume

    def __post_init__(self) -> None:
        scale = self.info["scales"][self.mip]
        self.name = f"mip {self.mip} ({scale['key']})"
        self.bounds = Box(_vec(scale["voxel_offset"]), _vec(scale["size"]))
        self.chunk = _vec(scale["chunk_sizes"][0])
        self.voxel_size_nm = tuple(float(v) for v in scale["resolution"])
        # Precomputed voxel coordinates are physical position / resolution.
        self.translation_nm = (0.0, 0.0, 0.0)
        self.dtype = np.dtype(self.info["data_type"])
        self.sharded = "sharding" in scale

    def read(self, box: Box) -> np.ndarray:
        from cloudvolume.exceptions import EmptyVolumeException

        (x0, y0, z0), (x1, y1, z1) = box.offset, box.end
        try:
            data = self.volume[x0:x1, y0:y1, z0:z1]
        except EmptyVolumeException as error:
            raise MissingVolumeDataError(
                f"{self.cloudpath} {self.name}: chunks for x {x0}-{x1}, y {y0}-{y1}, "
                f"z {z0}-{z1} are missing or forbidden (HTTP 403/404); refusing to fill "
                f"them with zeros ({error})"
            ) from error
        return np.ascontiguousarray(np.asarray(data)[..., 0].transpose(2, 1, 0))


def _vec(values: list[Any]) -> Vec:
    return (int(values[0]), int(values[1]), int(values[2]))


def open_precomputed(
    cloudpath: str, variable: str
) -> tuple[dict[str, Any], list[PrecomputedLevel]]:
    """The layer's `info` and one level per mip; errors name the setting to fix."""
    from cloudvolume.exceptions import InfoUnavailableError, ScaleUnavailableError

    try:
        info = _open(cloudpath, 0, None).info
    except (InfoUnavailableError, ScaleUnavailableError) as error:
        raise ConfigurationError(
            f"{variable}={cloudpath!r}: no readable precomputed 'info' there ({error})"
        ) from error
    if info.get("type") != "image" or info.get("num_channels", 1) != 1:
        raise ConfigurationError(
            f"{variable}={cloudpath!r} is not a single-channel image layer "
            f"(type {info.get('type')!r}, {info.get('num_channels')} channels)"
        )
    levels = [PrecomputedLevel(cloudpath, mip, info) for mip in range(len(info["scales"]))]
    return info, levels
