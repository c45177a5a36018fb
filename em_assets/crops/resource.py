"""How crops are copied, as a resource: block size and parallel blocks within a step."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from em_assets.crops.geometry import Vec, block_shape


class CropCopy(ConfigurableResource):
    """Crops larger than one block are split into chunk-aligned blocks copied in parallel.

    The defaults were measured (benchmarks/results.md): on 2 cores, two workers on blocks
    of 8 Mi voxels copy a 1000³ crop within a few percent of the fastest setting measured,
    while the whole run stays under 40 % of the crop's decoded size.
    """

    block_voxels: int = Field(
        default=2**23, gt=0, description="voxels per block (whole source chunks, at least one)"
    )
    workers: int = Field(default=2, ge=1, description="blocks copied at once within a step")

    def block(self, chunk: Vec) -> Vec:
        return block_shape(chunk, self.block_voxels)
