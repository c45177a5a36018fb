"""What the rest of the project needs to know about one dataset: its `DatasetSpec`.

Definitions, the report's inputs, the refresh schedule, the source check, the scale-out
variant and the deployment all iterate the registry's specs (`datasets.registry`) instead of
naming datasets, so a dataset is added by adding its module, not by editing theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from dagster import AssetChecksDefinition, AssetsDefinition, ConfigurableResource

from em_assets.datasets.crop_flow import CropDataset
from em_assets.images.check import images_check
from em_assets.refresh.probe import CurrentVersion

ResourceFactory = Callable[[], ConfigurableResource]
"""Builds a resource fed by the project's environment variables (see `settings`)."""


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset as the project wires it.

    `resources` are the outside services the dataset reads (beyond the shared `storage`,
    `http` and `crop_copy`), each built from its environment variables; two datasets reading
    the same service declare the same key. `crop` is set for the crop kind, whose scale-out
    variant splits the copy into block partitions.
    """

    name: str
    asset: AssetsDefinition
    intact_check: AssetChecksDefinition
    """The blocking check that the stored data still reads back as recorded (deep-verified
    monthly)."""
    current_version: CurrentVersion
    resources: Mapping[str, ResourceFactory]
    other_checks: Sequence[AssetChecksDefinition] = ()
    crop: CropDataset | None = None
    """The crop flow's description of a crop dataset, else None (a file set)."""
    images_check: AssetChecksDefinition = field(init=False)
    """Every dataset's OME-Zarr images still open as listed (`images.check`), made here so a
    dataset module does not repeat it."""
    checks: tuple[AssetChecksDefinition, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "images_check", images_check(self.name))
        object.__setattr__(
            self, "checks", (self.intact_check, self.images_check, *self.other_checks)
        )
