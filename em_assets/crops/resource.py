"""How crops are copied, as a resource: block size and parallel blocks within a step."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from em_assets.crops.geometry import Vec, block_shape


class CropCopy(ConfigurableResource):
    """Crops larger than one block are split into chunk-aligned blocks copied in parallel.

    The defaults were measured (benchmarks/crop_copy.py, 1000³ hemibrain-like crop over
    HTTP, 2 cores; benchmarks/analysis.md): a block's chunks are its requests in flight,
    and a worker issues its next block's requests only once it has digested the last one,
    so the copy is paced by how many requests are in flight, not by the cores. Eight
    workers on blocks of 2 Mi voxels (64 chunks of 64³ in flight) copied the crop in about
    14 s where two workers on 4 Mi voxels (32 in flight) took about 20 s, at no more
    memory (238 MB against 245-267 MB peak RSS): the blocks themselves are a few MB; most
    of the process's memory is its libraries, the read and write chunk buffers and
    tensorstore's threads' malloc arenas. More requests in flight matter even more against
    a remote source with 50-100 ms of latency.
    """

    block_voxels: int = Field(
        default=2**21, gt=0, description="voxels per block (whole source chunks, at least one)"
    )
    workers: int = Field(default=8, ge=1, description="blocks copied at once within a step")

    def block(self, chunk: Vec) -> Vec:
        return block_shape(chunk, self.block_voxels)
