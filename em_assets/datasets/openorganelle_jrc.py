"""OpenOrganelle jrc_mus-liver: a seeded crop of the FIB-SEM OME-Zarr pyramid on public S3."""

from typing import Any

import zarr
from dagster import (
    AssetExecutionContext,
    MetadataValue,
    asset,
)
from pydantic import Field

from em_assets.crops import steps
from em_assets.crops.alignment import label_checks
from em_assets.crops.groundtruth import GROUNDTRUTH, open_groundtruth, placement_around
from em_assets.crops.labels import check_alignable
from em_assets.crops.neuroglancer import layer_source
from em_assets.crops.resource import CropCopy
from em_assets.crops.zarr_source import ZarrLevel, open_multiscale
from em_assets.datasets.crop_flow import (
    CropDataset,
    CropSource,
    crop_check_specs,
    crop_intact_check,
    materialize_crop,
)
from em_assets.datasets.spec import DatasetSpec
from em_assets.manifest.metadata import static_metadata
from em_assets.manifest.model import DatasetFacts, version_digest
from em_assets.manifest.thumbnail import recorded_thumbnail
from em_assets.refresh.freshness import DATASET_FRESHNESS
from em_assets.refresh.probe import SourceAccess
from em_assets.refresh.verification import VerifiedConfig
from em_assets.settings import ASSET_GROUP, OPENORGANELLE_URL, S3_JANELIA_POOL, ConfigurationError
from em_assets.sources import OpenOrganelleStore
from em_assets.storage.root import StorageRoot
from em_assets.transfer.unreachable import reaching

ASSET_NAME = "openorganelle_jrc"
EM_ARRAY = "recon-1/em/fibsem-uint8"
SOURCE_KEY = "openorganelle"
FACTS = DatasetFacts(
    title="OpenOrganelle jrc_mus-liver FIB-SEM (Janelia COSEM)",
    technique="FIB-SEM (Janelia enhanced FIB-SEM)",
    organism="Mus musculus",
    sample="liver",
    license="CC BY 4.0 (COSEM data; not confirmed for this dataset)",
    citation=(
        "Heinrich L. et al. Whole-cell organelle segmentation in volume electron microscopy. "
        "Nature 599, 141-146 (2021); dataset jrc_mus-liver, Janelia COSEM/CellMap."
    ),
    homepage="https://openorganelle.janelia.org/datasets/jrc_mus-liver",
    documented_voxel_size_nm=(8.0, 8.0, 8.0),
    documented_voxel_size_source="OpenOrganelle dataset page (8 nm EM; 4 nm is some label arrays)",
    doi="10.25378/janelia.16913047",
)


class OpenOrganelleConfig(VerifiedConfig):
    scale: str = Field(default="s0", description="pyramid level, e.g. s0 (finest) to s4")
    crop_size: int = Field(default=512, gt=0, description="voxels per edge of the cubic crop")
    seed: int = Field(default=2021, description="same seed, same crop")
    groundtruth_crop: str | None = Field(
        default=None,
        description=(
            "a CellMap ground-truth crop (e.g. 'crop124'): the EM crop is placed to contain "
            "it (crop_size and seed are then not used) and its classes are stored as labels"
        ),
    )


CHECK_PREFIX = "openorganelle"
"""The prefix of this crop's check names."""


@asset(
    name=ASSET_NAME,
    group_name=ASSET_GROUP,
    kinds={"s3", "zarr"},
    code_version="1",
    freshness_policy=DATASET_FRESHNESS,
    pool=S3_JANELIA_POOL,
    description=(
        "A seeded, tissue-containing cubic crop of the jrc_mus-liver FIB-SEM volume "
        "(OME-Zarr on public S3), copied chunk-aligned into OME-Zarr; the value is the "
        "crop's manifest."
    ),
    metadata=static_metadata(FACTS, OPENORGANELLE_URL.default),
    check_specs=crop_check_specs(ASSET_NAME, FACTS, CHECK_PREFIX),
)
def openorganelle_jrc(
    context: AssetExecutionContext,
    config: OpenOrganelleConfig,
    storage: StorageRoot,
    openorganelle: OpenOrganelleStore,
    crop_copy: CropCopy,
):  # no return annotation: with check_specs, Dagster would read it as the output's type
    with (
        storage.lease(DATASET.name, context.run.run_id, context.log),
        reaching("the OpenOrganelle volume", [openorganelle.url]),
    ):
        source = open_source(openorganelle, config)
        return materialize_crop(
            DATASET,
            source,
            storage,
            crop_copy,
            context.log,
            config.deep,
            lambda version: recorded_thumbnail(context.instance, context.asset_key, version),
        )


def open_source(openorganelle: OpenOrganelleStore, config: OpenOrganelleConfig) -> CropSource:
    """The EM pyramid's levels, and the requested crop, checked before any voxel moves."""
    group_url = f"{openorganelle.validated_url()}/{EM_ARRAY}"
    group, levels = open_multiscale(group_url, OPENORGANELLE_URL.name)
    by_name = {level.name: level for level in levels}
    if config.scale not in by_name:
        raise ConfigurationError(
            f"scale {config.scale!r} is not in {group_url}; available: {', '.join(by_name)}"
        )
    level = by_name[config.scale]
    labels, placement, placing = [], None, {}
    if config.groundtruth_crop:
        container = openorganelle.validated_url()
        labels = open_groundtruth(container, config.groundtruth_crop, OPENORGANELLE_URL.name)
        check_alignable(labels, level)
        placement = placement_around(level, labels, config.groundtruth_crop, config.seed)
        size = placement.box.size
        where = f"{container}/{GROUNDTRUTH}/{config.groundtruth_crop}"
        placing = {"shape": f"{where} multiscales extent", "crop": placement.description}
    else:
        size = (config.crop_size,) * 3
        steps.check_crop_fits(level, size, "crop_size")
    return CropSource(
        level=level,
        levels=list(levels),
        version=group_version(group, levels),
        size=size,
        seed=config.seed,
        run_config=config.recorded(),
        voxel_size_source=(
            f"{group_url}/.zattrs multiscales[0] dataset {level.name!r} scale "
            "(coordinateTransformations)"
        ),
        source_urls=[group_url, f"{group_url}/{level.name}"],
        provenance={
            "translation_nm": f"{group_url}/.zattrs multiscales translation of {level.name!r}",
            "dtype": f"{group_url}/{level.name}/.zarray",
            "technique": FACTS.homepage,
            "organism": FACTS.homepage,
            "sample": FACTS.homepage,
            **placing,
        },
        metadata={"source_chunks": MetadataValue.text(" × ".join(map(str, level.chunk)))},
        labels=labels,
        placement=placement,
        viewer_source=layer_source("zarr", group_url),
    )


def group_version(group: zarr.Group, levels: list[ZarrLevel]) -> str:
    """The pyramid's version: its multiscales attributes and every level's array metadata."""
    arrays = {level.name: level.array.metadata.to_dict() for level in levels}
    return version_digest({"attrs": group.attrs.asdict(), "arrays": arrays})


DATASET = CropDataset(
    ASSET_NAME,
    FACTS,
    open_source,
    OpenOrganelleConfig,
    SOURCE_KEY,
    CHECK_PREFIX,
    "multiscales scale of the finest level",
)


def current_version(source: SourceAccess, run_config: dict[str, Any]) -> str:
    """The pyramid's version (see `group_version`)."""
    openorganelle: OpenOrganelleStore = source.resource(SOURCE_KEY)
    group, levels = open_multiscale(
        f"{openorganelle.validated_url()}/{EM_ARRAY}", OPENORGANELLE_URL.name
    )
    return group_version(group, levels)


openorganelle_crop_intact = crop_intact_check(DATASET)
openorganelle_labels_aligned = label_checks(ASSET_NAME, "openorganelle")


SPEC = DatasetSpec(
    name=ASSET_NAME,
    asset=openorganelle_jrc,
    intact_check=openorganelle_crop_intact,
    other_checks=[openorganelle_labels_aligned],
    current_version=current_version,
    resources={SOURCE_KEY: lambda: OpenOrganelleStore(url=OPENORGANELLE_URL.source())},
    crop=DATASET,
)
