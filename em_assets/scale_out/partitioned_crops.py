"""Each crop dataset as block partitions plus an assembling step.

`<dataset>_blocks` has one static partition per share of the crop's blocks: each partition
places the crop (the same seed gives every worker the same place), copies its blocks into
the shared store, and stores what it copied (per-chunk digests, statistics). `<dataset>`
then merges the shares into the manifest the single-step asset would have written.
Give both assets the same run config.
"""

from collections.abc import Callable
from typing import Any, TypeVar

from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    StaticPartitionsDefinition,
    asset,
)

from em_assets.datasets.crop_flow import assemble, copy_partition, crop_check_specs
from em_assets.datasets.spec import DatasetSpec
from em_assets.refresh.verification import VerifiedConfig
from em_assets.settings import CROP_PARTITIONS, ConfigurationError
from em_assets.storage.root import StorageRoot

F = TypeVar("F", bound=Callable[..., Any])


def block_partitions() -> StaticPartitionsDefinition:
    """`EM_CROP_PARTITIONS` shares (default 8), fixed when the definitions load."""
    value = CROP_PARTITIONS.value()
    if not value.isdigit() or not 1 <= int(value) <= 4096:
        raise ConfigurationError(
            f"{CROP_PARTITIONS.name}={value!r} must be a whole number from 1 to 4096"
        )
    return StaticPartitionsDefinition([str(index) for index in range(int(value))])


PARTITIONS = block_partitions()
SHARES = len(PARTITIONS.get_partition_keys())


def partitioned_crop(dataset: DatasetSpec) -> list[AssetsDefinition]:
    """`<dataset>_blocks` and the assembling `<dataset>`, from the single-step crop's spec:
    same config, source resource, kinds, pool and catalog metadata (source, licence,
    citation), so the two variants cannot drift apart."""
    crop = dataset.crop
    if crop is None:
        raise ValueError(f"{dataset.name} is not a crop dataset; it has no partitioned variant")
    single = dataset.asset.specs_by_key[dataset.asset.key]
    pool = dataset.asset.op.pool
    resource_keys = {"storage", "crop_copy", crop.source_key}

    def blocks(context: AssetExecutionContext, config: VerifiedConfig) -> dict:
        resources = context.resources
        source = crop.open(getattr(resources, crop.source_key), config)
        return copy_partition(
            crop, source, resources.storage, resources.crop_copy,
            int(context.partition_key), SHARES, context.log,
        )  # fmt: skip

    # No return annotation: with check_specs, Dagster would read it as the output's type.
    def assembled(context: AssetExecutionContext, config: VerifiedConfig, shares: dict):
        resources = context.resources
        storage: StorageRoot = resources.storage
        source = crop.open(getattr(resources, crop.source_key), config)
        with storage.lease(crop.name, context.run.run_id, context.log):
            return assemble(crop, source, shares, storage, resources.crop_copy, context.log)

    blocks_asset = asset(
        name=f"{dataset.name}_blocks",
        partitions_def=PARTITIONS,
        group_name=single.group_name,
        kinds=single.kinds,
        code_version=single.code_version,
        pool=pool,
        required_resource_keys=resource_keys,
        description=f"One share of the {dataset.name} crop's blocks, copied into the shared store.",
    )(_with_config(blocks, crop.config))
    assembled_asset = asset(
        name=dataset.name,
        ins={"shares": AssetIn(f"{dataset.name}_blocks")},
        group_name=single.group_name,
        kinds=single.kinds,
        code_version=single.code_version,
        freshness_policy=single.freshness_policy,
        pool=pool,
        metadata=single.metadata,
        # The single step's WARN checks, yielded by the assembling step the same way.
        check_specs=crop_check_specs(crop.name, crop.facts, crop.check_prefix),
        required_resource_keys=resource_keys,
        description=f"The {dataset.name} crop assembled from its block partitions; its manifest.",
    )(_with_config(assembled, crop.config))
    return [blocks_asset, assembled_asset]


def _with_config(function: F, config: type[VerifiedConfig]) -> F:
    """`function` with its `config` annotated as the dataset's own config class, from which
    Dagster reads the run config schema (the class is known only once the spec is)."""
    function.__annotations__["config"] = config
    return function
