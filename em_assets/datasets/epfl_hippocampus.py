"""EPFL hippocampus (Lucchi et al.): multi-page TIFF stacks over HTTPS."""

from datetime import UTC, datetime
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    MaterializeResult,
    asset,
    asset_check,
)
from pydantic import Field, field_validator
from upath import UPath

from em_assets.datasets import downloads
from em_assets.datasets.downloads import RemoteFile
from em_assets.datasets.spec import DatasetSpec
from em_assets.formats.errors import CorruptFileError
from em_assets.formats.tiff import central_page, read_tiff_header, tiff_shape_and_dtype
from em_assets.images.build import build_images
from em_assets.images.file_datasets import labelled_stacks
from em_assets.integrity.checks import stored_data_intact
from em_assets.manifest.materialization import materialization, settle
from em_assets.manifest.metadata import static_metadata
from em_assets.manifest.model import (
    DatasetFacts,
    FileEntry,
    Manifest,
    build_manifest,
)
from em_assets.manifest.thumbnail import thumbnail_metadata
from em_assets.refresh.freshness import DATASET_FRESHNESS
from em_assets.refresh.probe import SourceAccess
from em_assets.refresh.verification import VerifiedConfig, deep_requested
from em_assets.settings import ASSET_GROUP, EPFL_POOL, EPFL_URL
from em_assets.sources import EpflServer
from em_assets.storage.root import StorageRoot, child_path
from em_assets.transfer.content import TIFF
from em_assets.transfer.resource import HttpTransfer

ASSET_NAME = "epfl_hippocampus"
AVAILABLE_FILES = (
    "training.tif",
    "training_groundtruth.tif",
    "testing.tif",
    "testing_groundtruth.tif",
    "volumedata.tif",
)
DATASET_PAGE = "https://www.epfl.ch/labs/cvlab/data/data-em/"
FACTS = DatasetFacts(
    title="Electron Microscopy Dataset: CA1 hippocampus (EPFL CVLab)",
    technique="FIB-SEM",
    organism="Mus musculus",
    sample="CA1 hippocampus",
    license="not stated publicly",
    citation=(
        "Lucchi A., Smith K., Achanta R., Knott G., Fua P. Supervoxel-Based Segmentation of "
        "Mitochondria in EM Image Stacks with Learned Shape Features. IEEE TMI 31(2), 2012."
    ),
    homepage=DATASET_PAGE,
    documented_voxel_size_nm=(5.0, 5.0, 5.0),
    documented_voxel_size_source=f"dataset web page {DATASET_PAGE} (the TIFFs carry no resolution)",
)


DEFAULT_FILES = ["training.tif", "training_groundtruth.tif"]


class EpflConfig(VerifiedConfig):
    files: list[str] = Field(
        default_factory=lambda: list(DEFAULT_FILES),
        description=f"which stacks to fetch; any of {', '.join(AVAILABLE_FILES)}",
    )

    @field_validator("files")
    @classmethod
    def _known_files(cls, files: list[str]) -> list[str]:
        unknown = [name for name in files if name not in AVAILABLE_FILES]
        if unknown:
            raise ValueError(
                f"unknown EPFL file(s) {unknown}; valid names are {', '.join(AVAILABLE_FILES)}"
            )
        if not files:
            raise ValueError(f"files is empty; choose from {', '.join(AVAILABLE_FILES)}")
        return list(dict.fromkeys(files))


@asset(
    name=ASSET_NAME,
    group_name=ASSET_GROUP,
    kinds={"https", "tiff"},
    code_version="2",
    freshness_policy=DATASET_FRESHNESS,
    pool=EPFL_POOL,
    description=(
        "EPFL CVLab CA1 hippocampus FIB-SEM stacks (the 'Lucchi' mitochondria benchmark), "
        "downloaded whole and verified; the value is the dataset's manifest."
    ),
    metadata=static_metadata(FACTS, EPFL_URL.default),
)
def epfl_hippocampus(
    context: AssetExecutionContext,
    config: EpflConfig,
    storage: StorageRoot,
    epfl: EpflServer,
    http: HttpTransfer,
) -> MaterializeResult:
    with storage.lease(ASSET_NAME, context.run.run_id, context.log):
        return _materialize_epfl_hippocampus(context, config, storage, epfl, http)


def _materialize_epfl_hippocampus(
    context: AssetExecutionContext,
    config: EpflConfig,
    storage: StorageRoot,
    epfl: EpflServer,
    http: HttpTransfer,
) -> MaterializeResult:
    files = remote_files(epfl, storage, config.files)
    previous = storage.stored_manifest(ASSET_NAME, context.log)
    client = http.client(context.log)
    try:
        remotes = downloads.probe_files(client, files)
        fetched = downloads.download(
            client, files, remotes, previous, TIFF, tiff_shape_and_dtype, context.log, config.deep
        )
    finally:
        client.close()
    entries = fetched.entries
    stacks, voxel = labelled_stacks(storage.base(), entries), FACTS.documented_voxel_size_nm
    images = build_images(storage, ASSET_NAME, stacks, voxel, FACTS.title, context.log)
    manifest = build_manifest(
        dataset=ASSET_NAME,
        title=FACTS.title,
        technique=FACTS.technique,
        organism=FACTS.organism,
        sample=FACTS.sample,
        voxel_size_nm=list(FACTS.documented_voxel_size_nm),
        voxel_size_source=FACTS.documented_voxel_size_source,
        axes=["z", "y", "x"],
        shape=entries[0].shape or [],
        dtype=entries[0].dtype or "",
        files=entries,
        source_urls=[epfl.file_url("")] + [f.url for f in files],
        license=FACTS.license,
        citation=FACTS.citation,
        retrieved_at=datetime.now(UTC),
        run_config=config.recorded(),
        source_version=downloads.source_version(remotes),
        images=images,
        provenance={
            "voxel_size_nm": FACTS.documented_voxel_size_source,
            "technique": f"dataset web page {DATASET_PAGE} (Zeiss NVision40 FIB-SEM)",
            "organism": f"dataset web page {DATASET_PAGE}",
            "sample": f"dataset web page {DATASET_PAGE}",
            "shape": "TIFF headers of the downloaded files",
            "dtype": "TIFF headers of the downloaded files",
        },
    )
    manifest, unchanged = settle(manifest, previous)
    thumbnail = thumbnail_metadata(
        central_page(files[0].destination), f"{files[0].path}, central page"
    )
    return materialization(manifest, unchanged, fetched.payload_bytes, thumbnail=thumbnail)


def remote_files(epfl: EpflServer, storage: StorageRoot, names: list[str]) -> list[RemoteFile]:
    directory = storage.dataset_dir(ASSET_NAME)
    return [
        RemoteFile(f"{ASSET_NAME}/{name}", epfl.file_url(name), child_path(directory, name))
        for name in names
    ]


def current_version(source: SourceAccess, run_config: dict[str, Any]) -> str:
    """The source's version as the asset would record it with `run_config`."""
    files = remote_files(source.resource("epfl"), source.storage, EpflConfig(**run_config).files)
    return downloads.source_version(downloads.probe_files(source.client, files))


@asset_check(
    asset=epfl_hippocampus,
    blocking=True,
    description="Every file is present with its recorded size and sha256, and opens as a "
    "uint8 TIFF stack with the recorded page count.",
)
def epfl_files_intact(
    context: AssetCheckExecutionContext, epfl_hippocampus: Manifest, storage: StorageRoot
) -> AssetCheckResult:
    return stored_data_intact(
        storage.base(), epfl_hippocampus, uint8_stack_problems, deep_requested(context)
    )


def uint8_stack_problems(path: UPath, entry: FileEntry) -> list[str]:
    """A stored stack must be a uint8 TIFF with the recorded number of pages."""
    try:
        header = read_tiff_header(path)
    except CorruptFileError as error:
        return [f"{entry.path}: {error}"]
    problems = []
    if header.dtype != "uint8":
        problems.append(f"{entry.path}: dtype {header.dtype}, expected uint8")
    if entry.shape and header.pages != entry.shape[0]:
        problems.append(f"{entry.path}: {header.pages} pages, manifest says {entry.shape[0]}")
    return problems


SPEC = DatasetSpec(
    name=ASSET_NAME,
    asset=epfl_hippocampus,
    intact_check=epfl_files_intact,
    current_version=current_version,
    resources={"epfl": lambda: EpflServer(base_url=EPFL_URL.source())},
)
