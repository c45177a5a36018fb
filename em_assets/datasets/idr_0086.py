"""IDR idr0086 (Miron et al.): the Figure S3B FIB-SEM TIFFs from EBI, pixel size from IDR's JSON.

The voxel size recorded is IDR's own image metadata (`pixel_size` {x, y, z} in µm): the
archive's curated value. The TIFFs are big-endian ImageJ 1.52p stacks that state their
own calibration too (50 px/µm in the resolution tags and `spacing=0.02` µm, i.e. 20 nm,
in the real files), so each file's tags are read and cross-checked against IDR's value: a
disagreement is a WARN check, and IDR's value stays the recorded one.
"""

import math
from dataclasses import asdict, dataclass
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
from em_assets.formats.tiff import (
    TiffCalibration,
    central_page,
    read_tiff_calibration,
    read_tiff_header,
)
from em_assets.images.file_datasets import tiff_stack
from em_assets.integrity.checks import (
    agrees_with_documentation,
    parsed_when_recorded,
    readable_by,
    recorded_manifest,
    stored_data_intact,
)
from em_assets.manifest.metadata import static_metadata
from em_assets.manifest.model import DatasetFacts, FileEntry
from em_assets.refresh.freshness import DATASET_FRESHNESS
from em_assets.refresh.verification import VerifiedConfig, deep_requested
from em_assets.settings import ASSET_GROUP, EBI_FILES_URL, EBI_POOL, IDR_URL
from em_assets.sources import EbiFiles, IdrApi, ebi_files
from em_assets.storage.root import StorageRoot, child_path
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
CALIBRATION_CHECK = "idr_pixel_size_matches_tiff"
DOCUMENTED_CHECK = "idr_voxel_size_documented"
PAGE_AXES = {FILES[0]: ("x", "y", "z"), FILES[1]: ("x", "z", "y")}
"""Which volume axes a file's page columns, page rows and pages are: the xz stack's pages
are z-x planes along y (775 pages of 184 × 1121 in the real file)."""


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
    """IDR's `pixel_size` {x, y, z} in micrometres (IDR sends no unit key; each axis may be
    null when the image has no physical size), as nanometres; refuses gaps."""
    sizes = image_data.get("pixel_size") or {}
    missing = [
        axis
        for axis in "xyz"
        if not isinstance(sizes.get(axis), int | float)
        or isinstance(sizes.get(axis), bool)
        or not math.isfinite(sizes[axis])
        or sizes[axis] <= 0
    ]
    if missing:
        fields = ", ".join(f"pixel_size.{axis} = {sizes.get(axis)!r}" for axis in missing)
        raise UnexpectedContentError(
            f"IDR image {IMAGE_ID} has no pixel_size for axes {missing} ({fields}): IDR "
            "states no physical pixel size, so the voxel size cannot be recorded",
            url=url,
        )
    return [round(float(sizes[axis]) * MICROMETRE_IN_NM, 6) for axis in "xyz"]


def calibration_agreement(
    calibrations: dict[str, TiffCalibration | None], idr_nm: list[float]
) -> AssetCheckResult:
    """Each TIFF's own resolution tags and ImageJ spacing against IDR's pixel size."""
    idr = dict(zip("xyz", idr_nm, strict=True))
    stated: dict[str, str] = {}
    problems: list[str] = []
    for name, calibration in calibrations.items():
        if calibration is None:
            stated[name] = "no physical calibration in the file"
            continue
        stated[name] = calibration.stated_as
        columns, rows, pages = PAGE_AXES[name]
        values = {columns: calibration.column_nm, rows: calibration.row_nm}
        if calibration.page_nm is not None:
            values[pages] = calibration.page_nm
        for axis, nm in sorted(values.items()):
            if not math.isclose(nm, idr[axis], rel_tol=1e-3):
                problems.append(f"{name}: {axis} is {nm:g} nm in the file, {idr[axis]:g} in IDR")
    return AssetCheckResult(
        check_name=CALIBRATION_CHECK,
        passed=not problems,
        severity=AssetCheckSeverity.WARN,
        description=None
        if not problems
        else "the TIFFs' own calibration differs from IDR's pixel_size (IDR's is recorded)",
        metadata={
            "idr_pixel_size_nm": MetadataValue.json(idr_nm),
            "tiff_calibration": MetadataValue.json(stated),
            "disagreements": MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none"),
        },
    )


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
            DOCUMENTED_CHECK,
            asset=ASSET_NAME,
            description=(
                "IDR's pixel size matches the documented 20 nm isotropic voxels (WARN if not)."
            ),
        ),
        AssetCheckSpec(
            SIZE_CHECK,
            asset=ASSET_NAME,
            description="IDR's recorded image size agrees with the xy TIFF's header (WARN if not).",
        ),
        AssetCheckSpec(
            CALIBRATION_CHECK,
            asset=ASSET_NAME,
            description=(
                "Each TIFF's resolution tags and ImageJ spacing agree with IDR's pixel_size "
                "(WARN if not; IDR's value is recorded)."
            ),
        ),
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
    return materialize_file_set(DATASET, context, config, storage, http, {"ebi": ebi, "idr": idr})


@dataclass(frozen=True)
class ImageDocument:
    """IDR's image metadata, where the voxel size is read from."""

    url: str
    data: dict[str, Any]

    def voxel_size_nm(self) -> list[float]:
        return pixel_size_nm(self.data, self.url)


def remote_files(ebi: EbiFiles, storage: StorageRoot) -> list[RemoteFile]:
    directory = storage.dataset_dir(ASSET_NAME)
    return [
        RemoteFile(
            f"{ASSET_NAME}/{name}", ebi.url(SUBMISSION_DIR + name), child_path(directory, name)
        )
        for name in FILES
    ]


def probe(request: ProbeRequest) -> FileSetProbe:
    """IDR's image document and the files' versions: all a refresh needs to decide."""
    ebi: EbiFiles = request.resource("ebi")
    idr: IdrApi = request.resource("idr")
    image_url = idr.image_data_url(IMAGE_ID)
    image_data = request.client.fetch_json(image_url, what=f"IDR image {IMAGE_ID} metadata")
    files = remote_files(ebi, request.storage)
    return FileSetProbe(
        files,
        downloads.probe_files(request.client, files),
        source_urls=[ebi.url(SUBMISSION_DIR), image_url, *(f.url for f in files)],
        document=image_data,
        details=ImageDocument(image_url, image_data),
    )


def read_header(path: UPath) -> Header:
    """Shape, dtype, page count (for the image's planes) and the TIFF's own calibration."""
    header = read_tiff_header(path)
    calibration = read_tiff_calibration(path)
    recorded = {
        "pages": header.pages,
        "calibration": None if calibration is None else asdict(calibration),
    }
    return Header(list(header.shape), header.dtype, calibration, recorded)


def recorded_header(entry: FileEntry) -> Header | None:
    """The header as the entry recorded it: shape, dtype and the TIFF's own calibration."""
    if entry.header is None or not entry.shape or not entry.dtype:
        return None
    try:
        stated, _ = entry.header["calibration"], entry.header["pages"]
        calibration = None if stated is None else TiffCalibration(**stated)
    except (KeyError, TypeError):  # recorded by another version: read the file instead
        return None
    return Header(list(entry.shape), entry.dtype, calibration, dict(entry.header))


def describe(stored: Stored) -> Description:
    image: ImageDocument = stored.probe.details
    first_entry, first_file = stored.entries[0], stored.probe.files[0]
    source = f"IDR imgData pixel_size (µm → nm), {image.url}"
    calibrations = {name: header.extra for name, header in stored.headers.items()}
    voxel = image.voxel_size_nm()
    return Description(
        voxel_size_nm=voxel,
        voxel_size_source=source,
        shape=first_entry.shape or [],
        dtype=first_entry.dtype or "",
        images=tiff_stack(stored.root, first_entry),
        thumbnail=lambda: (
            central_page(first_file.destination),
            f"{first_file.path}, central page",
        ),
        provenance={
            "voxel_size_nm": source,
            "shape": "TIFF headers of the downloaded files",
            "dtype": "TIFF headers of the downloaded files",
            "image_name": str((image.data.get("meta") or {}).get("imageName", "")),
            "technique": "Miron et al. 2020 (Zeiss Merlin FIB-SEM, rescaled to 20 nm)",
            "organism": "IDR study idr0086",
            "sample": "IDR study idr0086",
        },
        check_results=[
            agrees_with_documentation(voxel, source, FACTS, DOCUMENTED_CHECK),
            size_agreement(image.data, first_entry.shape or []),
            calibration_agreement(calibrations, voxel),
        ],
    )


def refuse(probe: FileSetProbe) -> None:
    """An image without a pixel size cannot be described: refused before any file moves."""
    probe.details.voxel_size_nm()


DATASET = FileSetDataset(
    ASSET_NAME, FACTS, IdrConfig, TIFF, probe, read_header, describe, refuse, recorded_header
)


@asset_check(
    asset=idr_0086,
    blocking=True,
    description="Both TIFFs present with their recorded size and sha256, and readable as TIFF.",
)
def idr_files_intact(context: AssetCheckExecutionContext, storage: StorageRoot) -> AssetCheckResult:
    return stored_data_intact(
        storage.base(),
        recorded_manifest(storage, ASSET_NAME),
        readable_by(read_tiff_header),
        deep_requested(context),
        parsed_when_recorded,
    )


SPEC = DatasetSpec(
    name=ASSET_NAME,
    asset=idr_0086,
    intact_check=idr_files_intact,
    current_version=current_version(DATASET),
    resources={
        "ebi": ebi_files,
        "idr": lambda: IdrApi(base_url=IDR_URL.source()),
    },
)
