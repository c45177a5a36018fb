"""A small extra file-set dataset, written as a new dataset module would be: its facts, its
source resource, its probe, its header reader, its description, and its `SPEC`. Nothing
else in the project is edited to add it (the test registers it beside the registry's).

Its source is a directory of TIFF stacks on an HTTP server (the project's HTTP replica in
the tests), addressed by `EM_TEST_MITO_SAMPLE_URL`.
"""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    ConfigurableResource,
    EnvVar,
    MaterializeResult,
    asset,
    asset_check,
)
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
from em_assets.formats.tiff import central_page, read_tiff_header, tiff_shape_and_dtype
from em_assets.images.file_datasets import tiff_stack
from em_assets.integrity.checks import readable_by, stored_data_intact
from em_assets.manifest.metadata import static_metadata
from em_assets.manifest.model import DatasetFacts, Manifest
from em_assets.refresh.verification import VerifiedConfig, deep_requested
from em_assets.settings import ASSET_GROUP
from em_assets.storage.root import StorageRoot, child_path
from em_assets.transfer.content import TIFF
from em_assets.transfer.resource import HttpTransfer

ASSET_NAME = "mito_sample"
SOURCE_KEY = "mito_sample_files"
URL_VARIABLE = "EM_TEST_MITO_SAMPLE_URL"
FILES = ("sample.tif",)
FACTS = DatasetFacts(
    title="A small mitochondria sample (test dataset)",
    technique="FIB-SEM",
    organism="Mus musculus",
    sample="test volume",
    license="CC0",
    citation="em_assets test suite",
    homepage="https://example.org/mito-sample",
    documented_voxel_size_nm=(4.0, 4.0, 4.0),
    documented_voxel_size_source="the test's own documentation",
)


class MitoSampleFiles(ConfigurableResource):
    """The HTTP directory holding the sample's TIFFs."""

    base_url: str

    def file_url(self, name: str) -> str:
        return f"{self.base_url.rstrip('/')}/{name}"


class MitoSampleConfig(VerifiedConfig):
    """The one file is fixed; only the verification mode is chosen per run."""


@asset(
    name=ASSET_NAME,
    group_name=ASSET_GROUP,
    kinds={"https", "tiff"},
    code_version="1",
    description="A small TIFF stack over HTTP; the value is the dataset's manifest.",
    metadata=static_metadata(FACTS, FACTS.homepage),
)
def mito_sample(
    context: AssetExecutionContext,
    config: MitoSampleConfig,
    storage: StorageRoot,
    mito_sample_files: MitoSampleFiles,
    http: HttpTransfer,
) -> MaterializeResult:
    return materialize_file_set(
        DATASET, context, config, storage, http, {SOURCE_KEY: mito_sample_files}
    )


def probe(request: ProbeRequest) -> FileSetProbe:
    files_resource: MitoSampleFiles = request.resource(SOURCE_KEY)
    directory = request.storage.dataset_dir(ASSET_NAME)
    files = [
        RemoteFile(
            f"{ASSET_NAME}/{name}", files_resource.file_url(name), child_path(directory, name)
        )
        for name in FILES
    ]
    remotes = downloads.probe_files(request.client, files)
    return FileSetProbe(files, remotes, source_urls=[f.url for f in files])


def read_header(path: UPath) -> Header:
    return Header(*tiff_shape_and_dtype(path))


def describe(stored: Stored) -> Description:
    entry, file = stored.entries[0], stored.probe.files[0]
    return Description(
        voxel_size_nm=list(FACTS.documented_voxel_size_nm),
        voxel_size_source=FACTS.documented_voxel_size_source,
        shape=entry.shape or [],
        dtype=entry.dtype or "",
        images=tiff_stack(stored.root, entry),
        thumbnail=lambda: (central_page(file.destination), f"{file.path}, central page"),
        provenance={"shape": "TIFF header", "dtype": "TIFF header"},
    )


DATASET = FileSetDataset(ASSET_NAME, FACTS, MitoSampleConfig, TIFF, probe, read_header, describe)


@asset_check(asset=mito_sample, blocking=True, description="The TIFF is stored as recorded.")
def mito_sample_intact(
    context: AssetCheckExecutionContext, mito_sample: Manifest, storage: StorageRoot
) -> AssetCheckResult:
    return stored_data_intact(
        storage.base(), mito_sample, readable_by(read_tiff_header), deep_requested(context)
    )


SPEC = DatasetSpec(
    name=ASSET_NAME,
    asset=mito_sample,
    intact_check=mito_sample_intact,
    current_version=current_version(DATASET),
    resources={SOURCE_KEY: lambda: MitoSampleFiles(base_url=EnvVar(URL_VARIABLE))},
)
