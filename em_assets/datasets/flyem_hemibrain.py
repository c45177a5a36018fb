"""FlyEM hemibrain: a seeded crop of the neuroglancer-precomputed EM volume, via cloud-volume."""

from typing import Any

from dagster import (
    AssetExecutionContext,
    MetadataValue,
    asset,
)
from pydantic import Field

from em_assets.crops import steps
from em_assets.crops.alignment import label_checks
from em_assets.crops.label_sources import open_precomputed_label
from em_assets.crops.labels import check_alignable
from em_assets.crops.neuroglancer import layer_source
from em_assets.crops.precomputed import PrecomputedLevel, open_precomputed
from em_assets.crops.resource import CropCopy
from em_assets.datasets.crop_flow import (
    CropDataset,
    CropSource,
    crop_check_specs,
    crop_intact_check,
    materialize_crop,
)
from em_assets.datasets.spec import DatasetSpec
from em_assets.manifest.metadata import static_metadata
from em_assets.manifest.model import DatasetFacts, SourceDocument, version_digest
from em_assets.manifest.thumbnail import recorded_thumbnail
from em_assets.refresh.freshness import DATASET_FRESHNESS
from em_assets.refresh.probe import SourceAccess
from em_assets.refresh.source_document import fetch_bytes, record, recorded_parse
from em_assets.refresh.verification import VerifiedConfig
from em_assets.settings import (
    ASSET_GROUP,
    GCS_POOL,
    HEMIBRAIN_MITO_URL,
    HEMIBRAIN_SEGMENTATION_URL,
    HEMIBRAIN_URL,
    ConfigurationError,
)
from em_assets.sources import HemibrainVolume
from em_assets.storage.root import StorageRoot
from em_assets.transfer.unreachable import reaching

ASSET_NAME = "flyem_hemibrain"
FACTS = DatasetFacts(
    title="FlyEM hemibrain EM (CLAHE-normalised, JPEG), Janelia",
    technique="FIB-SEM",
    organism="Drosophila melanogaster",
    sample="adult hemibrain",
    license="open data (licence not stated in the volume)",
    citation=(
        "Scheffer L.K. et al. A connectome and analysis of the adult Drosophila central "
        "brain. eLife 9:e57443 (2020)."
    ),
    homepage="https://www.janelia.org/project-team/flyem/hemibrain",
    documented_voxel_size_nm=(8.0, 8.0, 8.0),
    documented_voxel_size_source="Scheffer et al. 2020 (8 nm isotropic FIB-SEM)",
    doi="10.7554/eLife.57443",
)


SOURCE_KEY = "hemibrain"
LABEL_LAYERS = ("segmentation", "mito")


class HemibrainConfig(VerifiedConfig):
    crop_size: int = Field(default=1000, gt=0, description="voxels per edge of the cubic crop")
    seed: int = Field(default=2020, description="same seed, same crop")
    mip: int = Field(default=0, ge=0, description="resolution level; 0 is full resolution")
    labels: list[str] = Field(
        default=["segmentation"],
        description=(
            "label layers stored with the crop as NGFF labels: 'segmentation' (neuron body "
            "ids, EM_HEMIBRAIN_SEGMENTATION_URL), 'mito' (EM_HEMIBRAIN_MITO_URL); [] for none"
        ),
    )


CHECK_PREFIX = "hemibrain"
"""The prefix of this crop's check names."""


@asset(
    name=ASSET_NAME,
    group_name=ASSET_GROUP,
    kinds={"gcs", "precomputed", "zarr"},
    code_version="1",
    freshness_policy=DATASET_FRESHNESS,
    pool=GCS_POOL,
    description=(
        "A seeded, tissue-containing cubic crop of the FlyEM hemibrain EM volume (sharded "
        "neuroglancer precomputed, JPEG) streamed block by block into OME-Zarr; the value "
        "is the crop's manifest."
    ),
    metadata=static_metadata(FACTS, HEMIBRAIN_URL.default.removeprefix("precomputed://")),
    check_specs=crop_check_specs(ASSET_NAME, FACTS, CHECK_PREFIX),
)
def flyem_hemibrain(
    context: AssetExecutionContext,
    config: HemibrainConfig,
    storage: StorageRoot,
    hemibrain: HemibrainVolume,
    crop_copy: CropCopy,
):  # no return annotation: with check_specs, Dagster would read it as the output's type
    with (
        storage.lease(DATASET.name, context.run.run_id, context.log),
        reaching(
            "the hemibrain volume and its labels",
            [hemibrain.cloudpath, hemibrain.segmentation_cloudpath, hemibrain.mito_cloudpath],
        ),
    ):
        previous = storage.stored_manifest(DATASET.name)
        return materialize_crop(
            DATASET,
            open_source(hemibrain, config, previous.source_document if previous else None),
            storage,
            crop_copy,
            context.log,
            config.deep,
            lambda version: recorded_thumbnail(context.instance, context.asset_key, version),
        )


def open_source(
    hemibrain: HemibrainVolume, config: HemibrainConfig, recorded: SourceDocument | None = None
) -> CropSource:
    """The layer's `info` and levels, and the requested crop, checked before any voxel moves.

    `recorded`: the `info` document the last materialization read; when the layer's `info`
    is byte-identical to it, its recorded parse is used, else cloud-volume reads it."""
    cloudpath = hemibrain.validated_cloudpath()
    info, levels, document = open_layer(cloudpath, recorded)
    if config.mip >= len(levels):
        raise ConfigurationError(
            f"mip {config.mip} does not exist; this volume has mips 0-{len(levels) - 1}"
        )
    level = levels[config.mip]
    size = (config.crop_size,) * 3
    steps.check_crop_fits(level, size, "crop_size")
    info_url = info_location(cloudpath)
    unknown = sorted(set(config.labels) - set(LABEL_LAYERS))
    if unknown:
        raise ConfigurationError(
            f"labels {unknown} are not hemibrain label layers; choose from {list(LABEL_LAYERS)}"
        )
    labels = [
        open_precomputed_label(name, *hemibrain.label_cloudpath(name))
        for name in dict.fromkeys(config.labels)
    ]
    check_alignable(labels, level)
    return CropSource(
        level=level,
        levels=list(levels),
        version=version_digest(info),
        size=size,
        seed=config.seed,
        run_config=config.recorded(),
        voxel_size_source=f"precomputed info scales[{config.mip}].resolution ({info_url})",
        source_urls=[cloudpath.removeprefix("precomputed://"), info_url],
        provenance={
            "dtype": f"precomputed info data_type ({info_url})",
            "technique": "Scheffer et al. 2020",
            "organism": "Scheffer et al. 2020",
            "sample": "Scheffer et al. 2020",
        },
        metadata={"sharded": MetadataValue.bool(level.sharded)},
        labels=labels,
        viewer_source=layer_source("precomputed", cloudpath),
        document=document,
    )


def info_location(cloudpath: str) -> str:
    return f"{cloudpath.removeprefix('precomputed://')}/info"


def open_layer(
    cloudpath: str, recorded: SourceDocument | None
) -> tuple[dict[str, Any], list[PrecomputedLevel], SourceDocument | None]:
    """The layer's `info`, its levels, and the `info` document to record.

    The `info` bytes are fetched first (one small GET); bytes identical to the recorded
    document's are not parsed again: they were read and checked by cloud-volume at the run
    that recorded them (`refresh.source_document`), and starting cloud-volume is about 2 s
    of an unchanged refresh. Any other bytes, or none, are read by cloud-volume.
    """
    url = info_location(cloudpath)
    body = fetch_bytes(url)
    known = recorded_parse(url, body, recorded)
    if known is not None:
        levels = [PrecomputedLevel(cloudpath, mip, known) for mip in range(len(known["scales"]))]
        return known, levels, recorded
    info, levels = open_precomputed(cloudpath, HEMIBRAIN_URL.name)
    return info, levels, record(url, body, info)


DATASET = CropDataset(
    ASSET_NAME,
    FACTS,
    open_source,
    HemibrainConfig,
    SOURCE_KEY,
    CHECK_PREFIX,
    "precomputed info scales[0].resolution",
)


def current_version(source: SourceAccess, run_config: dict[str, Any]) -> str:
    """The layer's version: a digest of its `info` (geometry, encoding, sharding), read as
    the asset reads it (`open_layer`)."""
    hemibrain: HemibrainVolume = source.resource(SOURCE_KEY)
    previous = source.storage.stored_manifest(ASSET_NAME)
    recorded = previous.source_document if previous else None
    info, _, _ = open_layer(hemibrain.validated_cloudpath(), recorded)
    return version_digest(info)


hemibrain_crop_intact = crop_intact_check(DATASET)
hemibrain_labels_aligned = label_checks(ASSET_NAME, "hemibrain")


SPEC = DatasetSpec(
    name=ASSET_NAME,
    asset=flyem_hemibrain,
    intact_check=hemibrain_crop_intact,
    other_checks=[hemibrain_labels_aligned],
    current_version=current_version,
    resources={
        SOURCE_KEY: lambda: HemibrainVolume(
            cloudpath=HEMIBRAIN_URL.source(),
            segmentation_cloudpath=HEMIBRAIN_SEGMENTATION_URL.source(),
            mito_cloudpath=HEMIBRAIN_MITO_URL.source(),
        )
    },
    crop=DATASET,
)
