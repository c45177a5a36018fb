"""IDR idr0086 (Miron et al.): the Figure S3B FIB-SEM TIFFs from EBI, pixel size from IDR's JSON.

The TIFFs' resolution tags are unreliable for this submission, so the voxel size comes
from IDR's own image metadata (`pixel_size`, in micrometres), never from the files.
"""

from datetime import UTC, datetime
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MetadataValue,
    asset,
    asset_check,
)

from em_assets.datasets import downloads
from em_assets.datasets.downloads import RemoteFile
from em_assets.formats.tiff import central_page, read_tiff_header, tiff_shape_and_dtype
from em_assets.images.build import build_images
from em_assets.images.file_datasets import tiff_stack
from em_assets.manifest.checks import agrees_with_documentation, readable_by, stored_data_intact
from em_assets.manifest.materialization import materialization, settle
from em_assets.manifest.metadata import static_metadata
from em_assets.manifest.model import DatasetFacts, Manifest, build_manifest
from em_assets.manifest.thumbnail import thumbnail_metadata
from em_assets.refresh.freshness import DATASET_FRESHNESS
from em_assets.refresh.verification import VerifiedConfig, deep_requested
from em_assets.settings import ASSET_GROUP, EBI_FILES_URL, EBI_POOL
from em_assets.sources import EbiFiles, IdrApi
from em_assets.storage.root import StorageRoot, child_path
from em_assets.transfer.client import HttpClient, RemoteVersion
from em_assets.transfer.content import TIFF
from em_assets.transfer.errors import UnexpectedContentError
from em_assets.transfer.resource import HttpTransfer

ASSET_NAME = "idr_0086"
IMAGE_ID = 9846137
SUBMISSION_DIR = (
    "pub/databases/IDR/idr0086-miron-micrographs/20200610-ftp/experimentD/"
    "Miron_FIB-SEM/Miron_FIB-SEM_processed/"
)
FILES = (
    "Figure_S3B_FIB-SEM_U2OS_20x20x20nm_xy.tif",
    "Figure_S3B_FIB-SEM_U2OS_20x20x20nm_xz.tif",
)
FACTS = DatasetFacts(
    title="idr0086 Miron et al.: FIB-SEM of U2OS nuclei (Figure S3B)",
    technique="FIB-SEM",
    organism="Homo sapiens",
    sample="U2OS osteosarcoma cells",
    license="CC BY 4.0",
    citation=(
        "Miron E. et al. Chromatin arranges in chains of mesoscale domains with "
        "nanoscale functional topography independent of cohesin. Science Advances 6(39), "
        "eaba8811 (2020); IDR idr0086."
    ),
    homepage="https://idr.openmicroscopy.org/webclient/?show=image-9846137",
    documented_voxel_size_nm=(20.0, 20.0, 20.0),
    documented_voxel_size_source="file names and IDR study (rescaled to isotropic 20 nm)",
    doi="10.1126/sciadv.aba8811",
)
MICROMETRE_IN_NM = 1000.0
SIZE_CHECK = "idr_size_matches_tiff"


class IdrConfig(VerifiedConfig):
    """The two stacks are fixed; only the verification mode is chosen per run."""


def size_agreement(image_data: dict[str, Any], shape_zyx: list[int]) -> AssetCheckResult:
    """IDR's `size` {z, height, width} against the xy TIFF's z, y, x: two sources, one volume."""
    size = image_data.get("size") or {}
    idr_shape = [size.get("z"), size.get("height"), size.get("width")]
    return AssetCheckResult(
        check_name=SIZE_CHECK,
        passed=idr_shape == shape_zyx,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "idr_size_zyx": MetadataValue.json(idr_shape),
            "tiff_shape_zyx": MetadataValue.json(shape_zyx),
        },
    )


def pixel_size_nm(image_data: dict[str, Any], url: str) -> list[float]:
    """IDR's `pixel_size` {x, y, z} in micrometres, as nanometres; refuses gaps."""
    sizes = image_data.get("pixel_size") or {}
    missing = [axis for axis in "xyz" if not isinstance(sizes.get(axis), int | float)]
    if missing:
        raise UnexpectedContentError(
            f"IDR image {IMAGE_ID} has no pixel_size for axes {missing} ({sizes!r})", url=url
        )
    return [round(float(sizes[axis]) * MICROMETRE_IN_NM, 6) for axis in "xyz"]


@asset(
    name=ASSET_NAME,
    group_name=ASSET_GROUP,
    kinds={"https", "tiff"},
    code_version="2",
    freshness_policy=DATASET_FRESHNESS,
    pool=EBI_POOL,
    description=(
        "The idr0086 Figure S3B FIB-SEM stacks of U2OS cells (xy and xz), with the voxel "
        "size read from IDR's image metadata; the value is the dataset's manifest."
    ),
    metadata=static_metadata(FACTS, f"{EBI_FILES_URL.default}/{SUBMISSION_DIR}"),
    check_specs=[
        AssetCheckSpec(
            SIZE_CHECK,
            asset=ASSET_NAME,
            description="IDR's recorded image size agrees with the xy TIFF's header (WARN if not).",
        )
    ],
)
def idr_0086(
    context: AssetExecutionContext,
    config: IdrConfig,
    storage: StorageRoot,
    ebi: EbiFiles,
    idr: IdrApi,
    http: HttpTransfer,
):  # no return annotation: with check_specs, Dagster would read it as the output's type
    with storage.lease(ASSET_NAME, context.run.run_id, context.log):
        return _materialize_idr_0086(context, config, storage, ebi, idr, http)


def _materialize_idr_0086(
    context: AssetExecutionContext,
    config: IdrConfig,
    storage: StorageRoot,
    ebi: EbiFiles,
    idr: IdrApi,
    http: HttpTransfer,
):
    files = remote_files(ebi, storage)
    previous = storage.stored_manifest(ASSET_NAME, context.log)
    client = http.client(context.log)
    try:
        image_url, image_data, remotes = probe(client, ebi, idr, storage)
        voxel = pixel_size_nm(image_data, image_url)
        fetched = downloads.download(
            client, files, remotes, previous, TIFF, tiff_shape_and_dtype, context.log, config.deep
        )
    finally:
        client.close()
    entries = fetched.entries
    images = build_images(
        storage, ASSET_NAME, tiff_stack(storage.base(), entries[0]), voxel, FACTS.title, context.log
    )
    image_url_source = f"IDR imgData pixel_size (µm → nm), {image_url}"
    manifest = build_manifest(
        dataset=ASSET_NAME,
        title=FACTS.title,
        technique=FACTS.technique,
        organism=FACTS.organism,
        sample=FACTS.sample,
        voxel_size_nm=voxel,
        voxel_size_source=image_url_source,
        axes=["z", "y", "x"],
        shape=entries[0].shape or [],
        dtype=entries[0].dtype or "",
        files=entries,
        source_urls=[ebi.url(SUBMISSION_DIR), image_url, *(f.url for f in files)],
        license=FACTS.license,
        citation=FACTS.citation,
        doi=FACTS.doi,
        retrieved_at=datetime.now(UTC),
        source_version=downloads.source_version(remotes, image_data),
        images=images,
        provenance={
            "voxel_size_nm": image_url_source,
            "shape": "TIFF headers of the downloaded files",
            "dtype": "TIFF headers of the downloaded files",
            "image_name": str((image_data.get("meta") or {}).get("imageName", "")),
            "technique": "Miron et al. 2020 (Zeiss Merlin FIB-SEM, rescaled to 20 nm)",
            "organism": "IDR study idr0086",
            "sample": "IDR study idr0086",
        },
    )
    manifest, unchanged = settle(manifest, previous)
    return materialization(
        manifest,
        unchanged,
        fetched.payload_bytes,
        check_results=[size_agreement(image_data, entries[0].shape or [])],
        thumbnail=thumbnail_metadata(
            central_page(files[0].destination), f"{files[0].path}, central page"
        ),
    )


def remote_files(ebi: EbiFiles, storage: StorageRoot) -> list[RemoteFile]:
    directory = storage.dataset_dir(ASSET_NAME)
    return [
        RemoteFile(
            f"{ASSET_NAME}/{name}", ebi.url(SUBMISSION_DIR + name), child_path(directory, name)
        )
        for name in FILES
    ]


def probe(
    client: HttpClient, ebi: EbiFiles, idr: IdrApi, storage: StorageRoot
) -> tuple[str, dict[str, Any], dict[str, RemoteVersion]]:
    """IDR's image document and the files' versions: all a refresh needs to decide."""
    image_url = idr.image_data_url(IMAGE_ID)
    image_data = client.fetch_json(image_url, what=f"IDR image {IMAGE_ID} metadata")
    return image_url, image_data, downloads.probe_files(client, remote_files(ebi, storage))


def current_version(client: HttpClient, ebi: EbiFiles, idr: IdrApi, storage: StorageRoot) -> str:
    _, image_data, remotes = probe(client, ebi, idr, storage)
    return downloads.source_version(remotes, image_data)


@asset_check(
    asset=idr_0086,
    blocking=True,
    description="Both TIFFs present with their recorded size and sha256, and readable as TIFF.",
)
def idr_files_intact(
    context: AssetCheckExecutionContext, idr_0086: Manifest, storage: StorageRoot
) -> AssetCheckResult:
    return stored_data_intact(
        storage.base(), idr_0086, readable_by(read_tiff_header), deep_requested(context)
    )


@asset_check(
    asset=idr_0086,
    description="IDR's pixel size matches the documented 20 nm isotropic voxels (WARN if not).",
)
def idr_voxel_size_documented(idr_0086: Manifest) -> AssetCheckResult:
    return agrees_with_documentation(idr_0086.voxel_size_nm, idr_0086.voxel_size_source, FACTS)
