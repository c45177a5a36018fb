"""OME-Zarr (NGFF multiscales, zarr v2) source volumes on S3 or HTTP, read anonymously.

zarr-python reads the group's attributes and each array's metadata; chunks are read by
tensorstore (`chunk_reader`), which computes the key of every chunk a read touches and
fetches exactly those; nothing here lists a prefix (the OpenOrganelle buckets hold
millions of objects). A chunk that is absent is the array's fill value by the zarr
specification, and is counted; any other failure (403, 5xx after retries, a chunk that
does not decode) fails the read.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import zarr

from em_assets.crops.chunk_reader import ChunkReader, open_zarr_array
from em_assets.crops.geometry import Box, Vec
from em_assets.settings import ConfigurationError


def storage_options(url: str) -> dict[str, Any]:
    """Anonymous access for public buckets; the endpoint comes from AWS_ENDPOINT_URL if set."""
    return {"anon": True} if urlsplit(url).scheme == "s3" else {}


@dataclass
class ZarrLevel:
    """One dataset of an NGFF multiscales group, as a `VolumeLevel` (x, y, z)."""

    name: str
    url: str
    array: zarr.Array
    voxel_size_nm: tuple[float, float, float]
    translation_nm: tuple[float, float, float]
    _reader: ChunkReader | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        z, y, x = self.array.shape
        self.bounds = Box((0, 0, 0), (int(x), int(y), int(z)))
        cz, cy, cx = self.array.chunks
        self.chunk: Vec = (int(cx), int(cy), int(cz))
        self.dtype = np.dtype(self.array.dtype)

    @property
    def reader(self) -> ChunkReader:
        with self._lock:
            if self._reader is None:
                self._reader = self._open_reader()
            return self._reader

    def _open_reader(self) -> ChunkReader:
        store = open_zarr_array(self.url)
        found = (tuple(store.shape), tuple(store.chunk_layout.read_chunk.shape))
        expected = (tuple(self.array.shape), tuple(self.array.chunks))
        if found != expected or store.dtype.numpy_dtype != self.dtype:
            raise ConfigurationError(
                f"{self.url}: tensorstore sees shape, chunks {found} {store.dtype}, zarr "
                f"{expected} {self.dtype}; the array changed while it was being read"
            )
        fill = self.array.metadata.fill_value  # None (undefined) is possible in zarr v2
        return ChunkReader(store.T, self.chunk, (0, 0, 0), fill, self.url)

    def read(self, box: Box) -> np.ndarray:
        return self.reader.read(box)[0]

    def read_counted(self, box: Box) -> tuple[np.ndarray, int]:
        return self.reader.read(box)


def _transform(dataset: dict[str, Any], kind: str, default: float) -> tuple[float, float, float]:
    for transform in dataset.get("coordinateTransformations", []):
        if transform.get("type") == kind:
            z, y, x = (float(v) for v in transform[kind])
            return (x, y, z)
    return (default, default, default)


def multiscale_levels(group: zarr.Group, where: str) -> list[ZarrLevel]:
    """Levels in the order the group's `multiscales` lists them, finest first."""
    try:
        attributes: dict[str, Any] = group.attrs.asdict()
        multiscale = attributes["multiscales"][0]
    except (KeyError, IndexError, TypeError) as error:
        raise ConfigurationError(f"{where} has no NGFF 'multiscales' attribute") from error
    axes = [axis["name"] if isinstance(axis, dict) else axis for axis in multiscale.get("axes", [])]
    if axes and axes != ["z", "y", "x"]:
        raise ConfigurationError(f"{where}: axes {axes}, expected z, y, x")
    return [
        ZarrLevel(
            name=dataset["path"],
            url=f"{where}/{dataset['path']}",
            # NGFF: a multiscales dataset path names an array (a group there fails on read).
            array=group[dataset["path"]],  # type: ignore[arg-type]  # Array | Group
            voxel_size_nm=_transform(dataset, "scale", 1.0),
            translation_nm=_transform(dataset, "translation", 0.0),
        )
        for dataset in multiscale["datasets"]
    ]


def _probe(url: str) -> None:
    """One plain request for the group's attributes before zarr opens it: zarr asks for
    several keys at once, and when the endpoint is unreachable the requests it abandons
    are reported at interpreter exit as noise; this one fails alone and cleanly."""
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(url, **storage_options(url))
    fs.exists(f"{path.rstrip('/')}/.zattrs")


def open_multiscale(url: str, variable: str) -> tuple[zarr.Group, list[ZarrLevel]]:
    _probe(url)
    try:
        group = zarr.open_group(url, mode="r", zarr_format=2, storage_options=storage_options(url))
    except FileNotFoundError as error:
        raise ConfigurationError(f"{variable}: no zarr group at {url} ({error})") from error
    return group, multiscale_levels(group, url)
