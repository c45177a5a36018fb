"""Hemibrain-like label layers: precomputed segmentations written with cloud-volume.

As published beside the hemibrain EM (each layer's `info` at
gs://neuroglancer-janelia-flyem-hemibrain/v1.2/segmentation and v1.2/mito-objects-grouped):
`type: segmentation`, uint64 ids, `compressed_segmentation` encoding, full resolution
sharded (`neuroglancer_uint64_sharded_v1`, gzip data) on the EM's grid, coarser scales
beside it. The mito layer here is deliberately coarser than the EM, so a label stored at
its own resolution is exercised. Ids exceed 2**32, so a uint32 shortcut would show.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cloudvolume import CloudVolume

from em_assets_tests.replicas.precomputed import CHUNK, OFFSET, SIZE, _write_shards

BUCKET = "neuroglancer-janelia-flyem-hemibrain"
SEGMENTATION_PATH = f"{BUCKET}/v1.2/segmentation"
MITO_PATH = f"{BUCKET}/v1.2/mito-objects-grouped"
ID_BASE = 2**40
BODY_EDGE = 8
"""Bodies are 8³ blocks: a label shifted by a whole block differs almost everywhere."""


@dataclass(frozen=True)
class SegmentationReplica:
    directory: Path
    resolution: tuple[int, int, int]
    offset: tuple[int, int, int]
    data: np.ndarray  # x, y, z, at the layer's finest scale

    def cloudpath(self, base_url: str, served_root: Path) -> str:
        return f"precomputed://{base_url}/{self.directory.relative_to(served_root).as_posix()}"

    def at(self, voxel: tuple[int, int, int]) -> int:
        """The id at a voxel of the finest scale (x, y, z, in the layer's coordinates)."""
        index = [voxel[i] - self.offset[i] for i in range(3)]
        return int(self.data[index[0], index[1], index[2]])


def body_ids(size: tuple[int, int, int], seed: int) -> np.ndarray:
    """Distinct uint64 ids per 8³ block (x, y, z), none beyond 60 % of x (no body there)."""
    x, y, z = np.meshgrid(*(np.arange(n) // BODY_EDGE for n in size), indexing="ij")
    ids = ID_BASE + seed * 10**9 + x + 1000 * y + 1_000_000 * z + 1
    ids = ids.astype(np.uint64)
    ids[int(size[0] * 0.6) :, :, :] = 0
    return ids


def write_segmentation(
    directory: Path,
    resolution: tuple[int, int, int],
    offset: tuple[int, int, int],
    size: tuple[int, int, int],
    chunk: tuple[int, int, int],
    sharded: bool,
    seed: int,
) -> SegmentationReplica:
    """A 2-scale compressed_segmentation layer; the finest scale sharded when `sharded`."""
    info = CloudVolume.create_new_info(
        num_channels=1,
        layer_type="segmentation",
        data_type="uint64",
        encoding="compressed_segmentation",
        resolution=list(resolution),
        voxel_offset=list(offset),
        volume_size=list(size),
        chunk_size=list(chunk),
        compressed_segmentation_block_size=[8, 8, 8],
    )
    url = f"file://{directory}"
    volume = CloudVolume(url, info=info, compress=False, progress=False)
    volume.add_scale([2, 2, 2], chunk_size=list(chunk), encoding="compressed_segmentation")
    if sharded:
        volume.image.to_sharded(
            uncompressed_shard_bytesize=8 * 128**3,
            data_encoding="gzip",
            minishard_index_encoding="gzip",
            mip=0,
        )
    volume.commit_info()
    data = body_ids(size, seed)
    level = data
    for mip in range(2):
        writer = CloudVolume(url, mip=mip, compress=False, progress=False)
        channels = level[..., np.newaxis]  # compressed_segmentation is written with a channel axis
        if writer.image.is_sharded(mip):
            _write_shards(writer, channels)
        else:
            writer[:, :, :] = channels
        level = level[::2, ::2, ::2]  # segmentations are downsampled by picking, not averaging
    return SegmentationReplica(directory, resolution, offset, data)


def write_hemibrain_labels(root: Path, em_resolution: tuple[int, int, int]) -> dict:
    """The segmentation on the EM's grid (sharded) and a mito layer at twice the voxel size."""
    coarse = tuple(2 * r for r in em_resolution)
    return {
        "segmentation": write_segmentation(
            root / SEGMENTATION_PATH, em_resolution, OFFSET, SIZE, CHUNK, True, seed=1
        ),
        "mito": write_segmentation(
            root / MITO_PATH,
            coarse,  # type: ignore[arg-type]  # three resolutions, x, y, z
            tuple(o // 2 for o in OFFSET),  # type: ignore[arg-type]  # 3 items, typed tuple[int, ...]
            tuple(s // 2 for s in SIZE),  # type: ignore[arg-type]  # 3 items, typed tuple[int, ...]
            (32, 32, 32),
            False,
            seed=2,
        ),
    }
