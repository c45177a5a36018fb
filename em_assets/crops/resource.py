"""How crops are copied, as a resource: block size and parallel blocks within a step."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from em_assets.crops.geometry import Vec, block_shape


class CropCopy(ConfigurableResource):
    """Crops larger than one block are split into chunk-aligned blocks copied in parallel.

    The defaults were measured (benchmarks/crop_copy.py, 1000³ hemibrain-like crop, 2
    cores): two workers on blocks of 4 Mi voxels copy as fast as on 8 Mi voxels, and the
    copy's peak RSS drops by about 50 MB. Memory is more than the blocks themselves: the
    read, the write's chunk buffers and tensorstore's threads' malloc arenas each hold a
    share of every block in flight. Smaller blocks (2 Mi) save a little more here, but a
    block's chunks are its requests in flight (16 per 4 Mi-voxel block of 64³ chunks, 32
    with two workers), which is what keeps a remote source with 50-100 ms of latency busy.
    """

    block_voxels: int = Field(
        default=2**22, gt=0, description="voxels per block (whole source chunks, at least one)"
    )
    workers: int = Field(default=2, ge=1, description="blocks copied at once within a step")

    def block(self, chunk: Vec) -> Vec:
        return block_shape(chunk, self.block_voxels)
