"""EPFL hippocampus (Lucchi et al.): multi-page TIFF stacks over HTTPS."""

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
from em_assets.datasets.file_set_flow import (
    Description,
    FileSetDataset,
    FileSetProbe,
    Header,
    ProbeRequest,
    Stored,
    current_version,
    materialize_file_set,
)
from em_assets.datasets.spec import DatasetSpec
from em_assets.formats.errors import CorruptFileError
from em_assets.formats.tiff import StackHeader, central_page, read_tiff_header
from em_assets.images.file_datasets import labelled_stacks, recorded_stack
from em_assets.integrity.checks import recorded_manifest, stored_data_intact
from em_assets.manifest.metadata import static_metadata
from em_assets.manifest.model import (
    DatasetFacts,
    FileEntry,
)
from em_assets.refresh.freshness import DATASET_FRESHNESS
from em_assets.refresh.verification import VerifiedConfig, deep_requested
from em_assets.settings import ASSET_GROUP, EPFL_POOL, EPFL_URL
from em_assets.sources import EpflServer
from em_assets.storage.root import StorageRoot, child_path
from em_assets.transfer.content import TIFF
from em_assets.transfer.resource import HttpTransfer

ASSET_NAME = "epfl_hippocampus"
SOURCE_KEY = "epfl"
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
    return materialize_file_set(DATASET, context, config, storage, http, {SOURCE_KEY: epfl})


def probe(request: ProbeRequest) -> FileSetProbe:
    """The chosen stacks' versions, by HEAD; the directory is the source."""
    epfl: EpflServer = request.resource(SOURCE_KEY)
    assert isinstance(request.config, EpflConfig)
    files = remote_files(epfl, request.storage, request.config.files)
    remotes = downloads.probe_files(request.client, files)
    return FileSetProbe(files, remotes, source_urls=[epfl.file_url("")] + [f.url for f in files])


def read_header(path: UPath) -> Header:
    """Shape and dtype, and the page count the intact check compares."""
    header = read_tiff_header(path)
    return Header(list(header.shape), header.dtype, recorded={"pages": header.pages})


def recorded_header(entry: FileEntry) -> Header | None:
    stack = recorded_stack(entry)
    if stack is None:
        return None
    return Header(list(stack.shape), stack.dtype, recorded={"pages": stack.pages})


def describe(stored: Stored) -> Description:
    """The TIFFs carry no resolution: the voxel size is the documented one."""
    first_entry, first_file = stored.entries[0], stored.probe.files[0]
    return Description(
        voxel_size_nm=list(FACTS.documented_voxel_size_nm),
        voxel_size_source=FACTS.documented_voxel_size_source,
        shape=first_entry.shape or [],
        dtype=first_entry.dtype or "",
        images=labelled_stacks(stored.root, stored.entries),
        thumbnail=lambda: (
            central_page(first_file.destination),
            f"{first_file.path}, central page",
        ),
        provenance={
            "voxel_size_nm": FACTS.documented_voxel_size_source,
            "technique": f"dataset web page {DATASET_PAGE} (Zeiss NVision40 FIB-SEM)",
            "organism": f"dataset web page {DATASET_PAGE}",
            "sample": f"dataset web page {DATASET_PAGE}",
            "shape": "TIFF headers of the downloaded files",
            "dtype": "TIFF headers of the downloaded files",
        },
    )


DATASET = FileSetDataset(
    ASSET_NAME, FACTS, EpflConfig, TIFF, probe, read_header, describe,
    recorded_header=recorded_header,
)  # fmt: skip


def remote_files(epfl: EpflServer, storage: StorageRoot, names: list[str]) -> list[RemoteFile]:
    directory = storage.dataset_dir(ASSET_NAME)
    return [
        RemoteFile(f"{ASSET_NAME}/{name}", epfl.file_url(name), child_path(directory, name))
        for name in names
    ]


@asset_check(
    asset=epfl_hippocampus,
    blocking=True,
    description="Every file is present with its recorded size and sha256, and opens as a "
    "uint8 TIFF stack with the recorded page count.",
)
def epfl_files_intact(
    context: AssetCheckExecutionContext, storage: StorageRoot
) -> AssetCheckResult:
    return stored_data_intact(
        storage.base(),
        recorded_manifest(storage, ASSET_NAME),
        uint8_stack_problems,
        deep_requested(context),
        recorded_stack_problems,
    )


def uint8_stack_problems(path: UPath, entry: FileEntry) -> list[str]:
    """A stored stack must be a uint8 TIFF with the recorded number of pages."""
    try:
        header = read_tiff_header(path)
    except CorruptFileError as error:
        return [f"{entry.path}: {error}"]
    return stack_problems(header, entry)


def recorded_stack_problems(entry: FileEntry) -> list[str] | None:
    """The same check of a stack trusted by its fingerprint, on the header its entry
    recorded of those bytes (None: nothing recorded, so the file is read)."""
    header = recorded_stack(entry)
    return None if header is None else stack_problems(header, entry)


def stack_problems(header: StackHeader, entry: FileEntry) -> list[str]:
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
    current_version=current_version(DATASET),
    resources={SOURCE_KEY: lambda: EpflServer(base_url=EPFL_URL.source())},
)
