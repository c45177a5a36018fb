"""Neuroglancer-precomputed JPEG volumes laid out like the hemibrain bucket, served over HTTP.

Written with cloud-volume itself (the reference implementation of the format), uncompressed
on disk so that a plain static server serves them as GCS does. Each volume holds tissue (a
smooth texture) beside empty padding (zeros), so crop placement has something to avoid.

Sparse layers are written as precomputed writers often do for the real hemibrain's empty
space: chunks that are all zeros are never written (cloud-volume's `delete_black_uploads`:
no file when unsharded, no entry in the shard's index when sharded), and Neuroglancer shows
them as zeros.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cloudvolume import CloudVolume
from cloudvolume.lib import Bbox

from em_assets_tests.replicas.http_server import ReplicaHTTPServer

LAYER_PATH = "neuroglancer-janelia-flyem-hemibrain/emdata/clahe_yz/jpeg"
SIZE = (256, 224, 192)  # x, y, z at mip 0
CHUNK = (64, 64, 64)
OFFSET = (64, 32, 16)
MIPS = 3
SPARSE_CHUNK = (32, 32, 32)
"""Small enough that even mip 2 (64 x 56 x 48) has whole chunks of padding to leave out."""
SPARSE_TISSUE_X = (0, SIZE[0] // 2)
EDGE = (90, SIZE[0])
"""Tissue from x = 90 (relative to the offset; off the 8-voxel JPEG block grid, so the
padding beside it ripples): a 128-voxel crop at x 0-128 is 70 % padding."""
SPARSE = (SIZE[0] - 50, SIZE[0])
"""Tissue only in the last 50 voxels of x: every 128-voxel crop is mostly padding."""


@dataclass(frozen=True)
class PrecomputedReplica:
    """A layer on disk: its directory, its full-resolution voxels (x, y, z) and geometry."""

    directory: Path
    resolution: tuple[int, int, int]
    data: np.ndarray
    sharded: bool

    def cloudpath(self, server: ReplicaHTTPServer) -> str:
        assert server.state.directory is not None, "the replica serves a directory"
        relative = self.directory.relative_to(server.state.directory).as_posix()
        return f"precomputed://{server.base_url}/{relative}"


def tissue_volume(seed: int = 3, tissue_x: tuple[int, int] = (0, int(SIZE[0] * 0.6))) -> np.ndarray:
    """Smooth grey-level texture over `tissue_x` (x from, to; by default the first 60 % of
    the width); zeros (padding) elsewhere, which JPEG turns into a low ripple."""
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*(np.arange(n) for n in SIZE), indexing="ij")
    texture = 128 + 50 * np.sin(x / 7.0) * np.cos(y / 5.0) + 30 * np.sin(z / 9.0 + x / 11.0)
    texture += rng.normal(0, 4, size=SIZE)
    volume = np.zeros(SIZE, dtype=np.uint8)
    start, stop = tissue_x
    volume[start:stop] = np.clip(texture[start:stop], 1, 255).astype(np.uint8)
    return volume


def _downsample(volume: np.ndarray) -> np.ndarray:
    x, y, z = (n // 2 * 2 for n in volume.shape)
    trimmed = volume[:x, :y, :z].astype(np.float32)
    return trimmed.reshape(x // 2, 2, y // 2, 2, z // 2, 2).mean(axis=(1, 3, 5)).astype(np.uint8)


def write_layer(
    directory: Path,
    resolution: tuple[int, int, int],
    sharded: bool,
    data: np.ndarray,
    chunk: tuple[int, int, int] = CHUNK,
    sparse: bool = False,
    mips: int = MIPS,
) -> PrecomputedReplica:
    """Write a JPEG layer of `mips` levels; mip 0 sharded (as the real one is) when `sharded`.

    `sparse`: all-zero chunks are left out, and every mip is sharded when `sharded`."""
    info = CloudVolume.create_new_info(
        num_channels=1,
        layer_type="image",
        data_type="uint8",
        encoding="jpeg",
        resolution=list(resolution),
        voxel_offset=list(OFFSET),
        volume_size=list(SIZE),
        chunk_size=list(chunk),
    )
    url = f"file://{directory}"
    volume = CloudVolume(url, info=info, compress=False, progress=False)
    for mip in range(1, mips):
        volume.add_scale([2**mip] * 3, chunk_size=list(chunk), encoding="jpeg")
    if sharded:
        for mip in range(mips) if sparse else [0]:
            # Small shards, so a crop spans several shard files read with byte ranges.
            volume.image.to_sharded(
                uncompressed_shard_bytesize=2 * 128**3 // 8**mip,
                data_encoding="raw",
                minishard_index_encoding="gzip",
                mip=mip,
            )
    volume.commit_info()

    level = data
    for mip in range(mips):
        writer = CloudVolume(
            url, mip=mip, compress=False, progress=False, delete_black_uploads=sparse
        )
        if writer.image.is_sharded(mip):
            _write_shards(writer, level)
        else:
            writer[:, :, :] = level
        level = _downsample(level)
    return PrecomputedReplica(directory, resolution, data, sharded)


def _write_shards(writer: CloudVolume, data: np.ndarray) -> None:
    """Sharded layers are written one whole shard at a time."""
    shard = writer.image.shard_shape(writer.mip)
    low = np.array(writer.voxel_offset)
    high = low + np.array(writer.volume_size)
    for x in range(low[0], high[0], shard[0]):
        for y in range(low[1], high[1], shard[1]):
            for z in range(low[2], high[2], shard[2]):
                start = np.array([x, y, z])
                stop = np.minimum(start + shard, high)
                a, b = (start - low).astype(int), (stop - low).astype(int)
                writer[Bbox(start, stop)] = data[a[0] : b[0], a[1] : b[1], a[2] : b[2]]
