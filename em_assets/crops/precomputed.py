"""Neuroglancer precomputed volumes (sharded or not): `info` through cloud-volume, voxels
through tensorstore.

cloud-volume, the format's reference implementation, reads and checks the `info`; chunks
are read by tensorstore (`chunk_reader`), which decodes them several times faster. A chunk
the format marks as never written (404 unsharded, absent from its shard's index when
sharded) reads as zeros and is counted; a forbidden, failing or undecodable chunk is an
error that names the region. cloud-volume's own `fill_missing=True` is never used: it turns
403 and network trouble into zeros as well.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from em_assets.crops.chunk_reader import ChunkReader, open_precomputed_scale
from em_assets.crops.geometry import Box, Vec
from em_assets.crops.volume import Nanometres
from em_assets.settings import ConfigurationError

if TYPE_CHECKING:
    from cloudvolume import CloudVolume

FILL_VALUE = 0
"""What Neuroglancer shows for a chunk that was never written."""


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

    The tensorstore handle is opened on the first read (one request for the `info`) and
    shared by all threads: tensorstore is thread-safe and runs its own I/O and decoding.
    """

    cloudpath: str
    mip: int
    info: dict[str, Any]
    _reader: ChunkReader | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        scale = self.info["scales"][self.mip]
        self.name = f"mip {self.mip} ({scale['key']})"
        self.bounds = Box(_vec(scale["voxel_offset"]), _vec(scale["size"]))
        self.chunk = _vec(scale["chunk_sizes"][0])
        self.voxel_size_nm = _nanometres(scale["resolution"])
        # Precomputed voxel coordinates are physical position / resolution.
        self.translation_nm = (0.0, 0.0, 0.0)
        self.dtype = np.dtype(self.info["data_type"])
        self.sharded = "sharding" in scale

    @property
    def reader(self) -> ChunkReader:
        with self._lock:
            if self._reader is None:
                self._reader = self._open_reader()
            return self._reader

    def _open_reader(self) -> ChunkReader:
        where = f"{self.cloudpath} {self.name}"
        url = self.cloudpath.removeprefix("precomputed://")
        store, shard_index = open_precomputed_scale(url, self.info["scales"][self.mip])
        domain = store.domain
        found = Box(_vec(list(domain.inclusive_min)), _vec(list(domain.shape)))
        if found != self.bounds or store.dtype.numpy_dtype != self.dtype:
            raise ConfigurationError(
                f"{where}: tensorstore sees {found} {store.dtype}, cloud-volume's info says "
                f"{self.bounds} {self.dtype}; the layer changed while it was being read"
            )
        return ChunkReader(store, self.chunk, self.bounds.offset, FILL_VALUE, where, shard_index)

    def read(self, box: Box) -> np.ndarray:
        return self.reader.read(box)[0]

    def read_counted(self, box: Box) -> tuple[np.ndarray, int]:
        return self.reader.read(box)


def _vec(values: list[Any]) -> Vec:
    return (int(values[0]), int(values[1]), int(values[2]))


def _nanometres(values: list[Any]) -> Nanometres:
    return (float(values[0]), float(values[1]), float(values[2]))


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
