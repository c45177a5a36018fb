"""How crops are copied, as a resource: block size and parallel blocks within a step."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from em_assets.crops.geometry import Vec, block_shape


class CropCopy(ConfigurableResource):
    """Crops larger than one block are split into chunk-aligned blocks copied in parallel."""

    block_edge: int = Field(
        default=256, gt=0, description="voxels per block edge, rounded down to whole chunks"
    )
    workers: int = Field(default=4, ge=1, description="blocks copied at once within a step")

    def block(self, chunk: Vec) -> Vec:
        return block_shape(chunk, self.block_edge**3)
