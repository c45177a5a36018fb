"""The two crops as block partitions plus an assembling step.

`<dataset>_blocks` has one static partition per share of the crop's blocks: each partition
places the crop (the same seed gives every worker the same place), copies its blocks into
the shared store, and stores what it copied (per-chunk digests, statistics). `<dataset>`
then merges the shares into the manifest the single-step asset would have written.
Give both assets the same run config.
"""

from dagster import (
    AssetExecutionContext,
    AssetIn,
    MaterializeResult,
    StaticPartitionsDefinition,
    asset,
)

from em_assets.crops.resource import CropCopy
from em_assets.datasets import flyem_hemibrain as hemibrain_dataset
from em_assets.datasets import openorganelle_jrc as openorganelle_dataset
from em_assets.datasets.crop_flow import assemble, copy_partition
from em_assets.datasets.flyem_hemibrain import HemibrainConfig
from em_assets.datasets.openorganelle_jrc import OpenOrganelleConfig
from em_assets.refresh.freshness import DATASET_FRESHNESS
from em_assets.settings import (
    ASSET_GROUP,
    CROP_PARTITIONS,
    GCS_POOL,
    S3_JANELIA_POOL,
    ConfigurationError,
)
from em_assets.sources import HemibrainVolume, OpenOrganelleStore
from em_assets.storage.root import StorageRoot


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


@asset(
    name="flyem_hemibrain_blocks",
    partitions_def=PARTITIONS,
    group_name=ASSET_GROUP,
    kinds={"gcs", "precomputed", "zarr"},
    code_version="1",
    pool=GCS_POOL,
    description="One share of the hemibrain crop's blocks, copied into the shared store.",
)
def flyem_hemibrain_blocks(
    context: AssetExecutionContext,
    config: HemibrainConfig,
    storage: StorageRoot,
    hemibrain: HemibrainVolume,
    crop_copy: CropCopy,
) -> dict:
    source = hemibrain_dataset.open_source(hemibrain, config)
    return copy_partition(
        hemibrain_dataset.DATASET, source, storage, crop_copy,
        int(context.partition_key), SHARES, context.log,
    )  # fmt: skip


@asset(
    name="flyem_hemibrain",
    ins={"shares": AssetIn("flyem_hemibrain_blocks")},
    group_name=ASSET_GROUP,
    kinds={"gcs", "precomputed", "zarr"},
    code_version="1",
    freshness_policy=DATASET_FRESHNESS,
    description="The hemibrain crop assembled from its block partitions; its manifest.",
)
def flyem_hemibrain_assembled(
    context: AssetExecutionContext,
    config: HemibrainConfig,
    storage: StorageRoot,
    hemibrain: HemibrainVolume,
    crop_copy: CropCopy,
    shares: dict,
) -> MaterializeResult:
    source = hemibrain_dataset.open_source(hemibrain, config)
    with storage.lease(hemibrain_dataset.DATASET.name, context.run.run_id, context.log):
        return assemble(hemibrain_dataset.DATASET, source, shares, storage, crop_copy, context.log)


@asset(
    name="openorganelle_jrc_blocks",
    partitions_def=PARTITIONS,
    group_name=ASSET_GROUP,
    kinds={"s3", "zarr"},
    code_version="1",
    pool=S3_JANELIA_POOL,
    description="One share of the OpenOrganelle crop's blocks, copied into the shared store.",
)
def openorganelle_jrc_blocks(
    context: AssetExecutionContext,
    config: OpenOrganelleConfig,
    storage: StorageRoot,
    openorganelle: OpenOrganelleStore,
    crop_copy: CropCopy,
) -> dict:
    source = openorganelle_dataset.open_source(openorganelle, config)
    return copy_partition(
        openorganelle_dataset.DATASET, source, storage, crop_copy,
        int(context.partition_key), SHARES, context.log,
    )  # fmt: skip


@asset(
    name="openorganelle_jrc",
    ins={"shares": AssetIn("openorganelle_jrc_blocks")},
    group_name=ASSET_GROUP,
    kinds={"s3", "zarr"},
    code_version="1",
    freshness_policy=DATASET_FRESHNESS,
    description="The OpenOrganelle crop assembled from its block partitions; its manifest.",
)
def openorganelle_jrc_assembled(
    context: AssetExecutionContext,
    config: OpenOrganelleConfig,
    storage: StorageRoot,
    openorganelle: OpenOrganelleStore,
    crop_copy: CropCopy,
    shares: dict,
) -> MaterializeResult:
    source = openorganelle_dataset.open_source(openorganelle, config)
    with storage.lease(openorganelle_dataset.DATASET.name, context.run.run_id, context.log):
        return assemble(
            openorganelle_dataset.DATASET, source, shares, storage, crop_copy, context.log
        )


ASSETS = [
    flyem_hemibrain_blocks,
    flyem_hemibrain_assembled,
    openorganelle_jrc_blocks,
    openorganelle_jrc_assembled,
]
