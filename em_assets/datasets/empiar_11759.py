"""EMPIAR-11759: zebrafish retina SBF-SEM slices (DM3) from EBI, described by EMPIAR's API.

XY voxel size comes from the entry's `pixel_width`/`pixel_height` (Ångström) and is
cross-checked against each DM3's own calibration (µm in the real files); the section
thickness (Z) is only in the imageset's free-text `details`, so it is parsed from there,
with that provenance, and cross-checked against the thickness 3View wrote into each DM3
(`SBFSEM.Record.Slice thickness`). A disagreement is a WARN check; the API's values stay.
"""

import json
import math
import re
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
from pydantic import Field
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
from em_assets.formats.autoindex import parse_listing
from em_assets.formats.dm3 import (
    SLICE_THICKNESS_TAG,
    Dm3Header,
    read_dm3_header,
    read_dm3_image,
)
from em_assets.images.file_datasets import slice_stack
from em_assets.integrity.checks import (
    agrees_with_documentation,
    parsed_when_recorded,
    readable_by,
    recorded_manifest,
    stored_data_intact,
)
from em_assets.logger import Logger
from em_assets.manifest.metadata import static_metadata
from em_assets.manifest.model import DatasetFacts, FileEntry
from em_assets.refresh.freshness import DATASET_FRESHNESS
from em_assets.refresh.verification import VerifiedConfig, deep_requested
from em_assets.settings import ASSET_GROUP, EBI_FILES_URL, EBI_POOL, EMPIAR_API_URL
from em_assets.sources import EbiFiles, EmpiarApi, ebi_files
from em_assets.storage.root import StorageRoot, child_path
from em_assets.transfer.client import HttpClient
from em_assets.transfer.content import DM3
from em_assets.transfer.errors import UnexpectedContentError
from em_assets.transfer.resource import HttpTransfer
from em_assets.transfer.retry import Attempts, TryAgain

ASSET_NAME = "empiar_11759"
ACCESSION = "EMPIAR-11759"
DATA_DIRECTORY = "empiar/world_availability/11759/data/"
LISTING_ATTEMPTS = 3
LISTING_CHECK = "empiar_listing_complete"
CALIBRATION_CHECK = "empiar_calibration_matches_api"
THICKNESS_CHECK = "empiar_section_thickness_matches_dm3"
DOCUMENTED_CHECK = "empiar_voxel_size_documented"
ANGSTROM_IN_NM = 0.1
UNIT_IN_NM = {"nm": 1.0, "µm": 1000.0, "\u03bcm": 1000.0, "um": 1000.0, "Å": 0.1, "A": 0.1}
"""Calibration units DM3 files use; µm is U+00B5 in Gatan's files, U+03BC also seen."""
FACTS = DatasetFacts(
    title="Developing retina in zebrafish 55 hpf larval eye (EMPIAR-11759)",
    technique="SBF-SEM",
    organism="Danio rerio",
    sample="retina of a 55 hpf larval eye",
    license="CC0 (all EMPIAR data)",
    citation="EMPIAR-11759, Electron Microscopy Public Image Archive, EMBL-EBI.",
    homepage="https://www.ebi.ac.uk/empiar/EMPIAR-11759/",
    documented_voxel_size_nm=(8.0, 8.0, 50.0),
    documented_voxel_size_source="EMPIAR-11759 entry page (8 nm pixels, 50 nm sections)",
    doi="10.6019/EMPIAR-11759",
)
_THICKNESS = re.compile(
    r"(?:section|slice|cut|thickness|z[\s-]*(?:step|spacing))[^.;]*?(\d+(?:\.\d+)?)\s*nm"
    r"|(\d+(?:\.\d+)?)\s*nm[\s-]*(?:thick|sections?|slices?|cuts?|steps?)",
    re.IGNORECASE,
)


class EmpiarConfig(VerifiedConfig):
    max_files: int | None = Field(
        default=None, gt=0, description="fetch only the first N slices (default: all)"
    )


def entry_document(document: Any, url: str) -> dict[str, Any]:
    """The entry inside the API's answer, which is keyed by the accession."""
    entry = document.get(ACCESSION) if isinstance(document, dict) else None
    if not isinstance(entry, dict):
        raise UnexpectedContentError(f"the EMPIAR API answer is not the {ACCESSION} entry", url=url)
    return entry


def dm3_imageset(entry: dict[str, Any], url: str) -> tuple[int, dict[str, Any]]:
    """The imageset describing the DM3 slices (by format, else the only one)."""
    imagesets = entry.get("imagesets") or []
    for index, imageset in enumerate(imagesets):
        formats = f"{imageset.get('data_format', '')} {imageset.get('header_format', '')}"
        if "DM3" in formats.upper() or "DM4" in formats.upper():
            return index, imageset
    if len(imagesets) == 1:
        return 0, imagesets[0]
    raise UnexpectedContentError(f"{ACCESSION} lists no DM3 imageset", url=url)


def api_pixel_size_nm(imageset: dict[str, Any], imageset_ref: str, url: str) -> list[float]:
    """x, y in nm from the imageset's `pixel_width`/`pixel_height` (Å), or an error naming
    the field: EMPIAR sends null for imagesets without a stated pixel size."""
    sizes = []
    for key in ("pixel_width", "pixel_height"):
        value = imageset.get(key)
        try:
            angstrom = float(value)  # type: ignore[arg-type]  # null is caught just below
        except (TypeError, ValueError):
            angstrom = math.nan
        if not angstrom > 0 or math.isinf(angstrom):
            raise UnexpectedContentError(
                f"{imageset_ref}.{key} is {json.dumps(value)}, not a pixel size in Å; "
                f"EMPIAR states no usable pixel size for {ACCESSION}, so its voxel size "
                "cannot be recorded (ask the archive to fix the entry)",
                url=url,
            )
        sizes.append(angstrom * ANGSTROM_IN_NM)
    return sizes


def section_thickness_nm(text: str) -> tuple[float, str] | None:
    """The section thickness stated in free text, with the phrase it came from."""
    match = _THICKNESS.search(text or "")
    if not match:
        return None
    return float(match.group(1) or match.group(2)), match.group(0)


def _list_slices(
    client: HttpClient, url: str, expected: int, log: Logger
) -> tuple[list[str], list[str]]:
    """DM3 names in the listing, listing again while fewer than the API's count.

    EBI's front end is load-balanced and one backend was seen omitting a file that still
    downloads, so a short listing is retried rather than trusted: through the client's one
    retry loop (its backoff, budget and log lines), at most `LISTING_ATTEMPTS` listings,
    after which a still-short listing is kept and flagged by the WARN check.
    """
    seen: set[str] = set()
    refused: list[str] = []

    def attempt(attempts: Attempts) -> None:
        listing = parse_listing(client.fetch_text(url, what=f"{ACCESSION} listing"), ".dm3")
        refused[:] = listing.refused
        seen.update(listing.files)
        if len(seen) < expected and attempts.total < LISTING_ATTEMPTS and attempts.can_retry:
            raise TryAgain(f"the listing names {len(seen)} DM3 files, the API says {expected}")

    client.retrying(url, f"{ACCESSION} listing", attempt)
    for href in refused:
        log.warning(f"{ACCESSION} listing entry {href!r} is not a plain file name here; refused")
    return sorted(seen), refused


@dataclass(frozen=True)
class EntryProbe:
    """What the API and the listing say now, beyond the files: for the description."""

    entry_url: str
    listing_url: str
    entry: dict[str, Any]
    index: int
    imageset: dict[str, Any]
    expected: int
    listed: int
    refused: list[str]

    @property
    def imageset_ref(self) -> str:
        return f"{self.entry_url} imagesets[{self.index}]"

    def api_xy_nm(self) -> list[float]:
        return api_pixel_size_nm(self.imageset, self.imageset_ref, self.entry_url)


def probe(request: ProbeRequest) -> FileSetProbe:
    """The entry (API), the slices it lists (EBI) and their versions (HEAD)."""
    empiar: EmpiarApi = request.resource("empiar")
    ebi: EbiFiles = request.resource("ebi")
    assert isinstance(request.config, EmpiarConfig)
    max_files = request.config.max_files
    client = request.client
    entry_url = empiar.entry_url(ACCESSION)
    listing_url = ebi.url(DATA_DIRECTORY)
    entry = entry_document(client.fetch_json(entry_url, what=f"{ACCESSION} entry"), entry_url)
    index, imageset = dm3_imageset(entry, entry_url)
    expected = int(imageset["num_images_or_tilt_series"])
    names, refused = _list_slices(client, listing_url, expected, request.log)
    if not names:
        raise UnexpectedContentError(f"{ACCESSION} listing names no DM3 files", url=listing_url)
    directory = request.storage.dataset_dir(ASSET_NAME)
    files = [
        RemoteFile(
            f"{ASSET_NAME}/{name}", ebi.url(DATA_DIRECTORY + name), child_path(directory, name)
        )
        for name in (names[:max_files] if max_files else names)
    ]
    return FileSetProbe(
        files,
        downloads.probe_files(client, files),
        source_urls=[listing_url, entry_url],
        document=entry,
        details=EntryProbe(
            entry_url, listing_url, entry, index, imageset, expected, len(names), refused
        ),
    )


def refuse(probe: FileSetProbe) -> None:
    """An entry without a pixel size cannot be described: refused before any slice moves."""
    probe.details.api_xy_nm()


def read_header(path: UPath) -> Header:
    header = read_dm3_header(path)
    return Header(list(header.shape), header.dtype, header, asdict(header))


def recorded_header(entry: FileEntry) -> Header | None:
    """The DM3 header as the entry recorded it (calibration, slice thickness included)."""
    if entry.header is None:
        return None
    try:
        fields = dict(entry.header)
        header = Dm3Header(
            **{**fields, "shape": tuple(fields["shape"]), "pixel_size": tuple(fields["pixel_size"])}
        )
    except (KeyError, TypeError):  # recorded by another version: read the file instead
        return None
    return Header(list(header.shape), header.dtype, header, asdict(header))


def _thickness_problems(headers: dict[str, Dm3Header], z_nm: float) -> list[str]:
    return [
        f"{name}: DM3 {SLICE_THICKNESS_TAG} says {header.slice_thickness_nm:g} nm"
        for name, header in headers.items()
        if header.slice_thickness_nm is not None
        and abs(header.slice_thickness_nm - z_nm) > 1e-3 * z_nm
    ]


def _calibration_problems(headers: dict[str, Dm3Header], api_xy_nm: list[float]) -> list[str]:
    problems = []
    for name, header in headers.items():
        factor = UNIT_IN_NM.get(header.unit)
        if factor is None:
            problems.append(f"{name}: calibration unit {header.unit!r} is not a length")
            continue
        xy = [round(v * factor, 6) for v in header.pixel_size]
        if any(abs(a - b) > 1e-3 * b for a, b in zip(xy, api_xy_nm, strict=True)):
            problems.append(f"{name}: DM3 says {xy[0]:g} × {xy[1]:g} nm")
    return problems


@asset(
    name=ASSET_NAME,
    group_name=ASSET_GROUP,
    kinds={"https", "dm3"},
    code_version="2",
    freshness_policy=DATASET_FRESHNESS,
    pool=EBI_POOL,
    description=(
        "EMPIAR-11759 serial block-face SEM slices of a zebrafish larval retina (DM3), "
        "listed from EBI and described by EMPIAR's API; the value is the dataset's manifest."
    ),
    metadata=static_metadata(FACTS, f"{EBI_FILES_URL.default}/{DATA_DIRECTORY}"),
    check_specs=[
        AssetCheckSpec(
            LISTING_CHECK,
            asset=ASSET_NAME,
            description="The listing names as many DM3 slices as the API counts (WARN if not).",
        ),
        AssetCheckSpec(
            CALIBRATION_CHECK,
            asset=ASSET_NAME,
            description="Each DM3's pixel calibration agrees with the API's (WARN if not).",
        ),
        AssetCheckSpec(
            DOCUMENTED_CHECK,
            asset=ASSET_NAME,
            description=(
                "The entry's voxel size matches the documented 8 × 8 × 50 nm (WARN if not)."
            ),
        ),
        AssetCheckSpec(
            THICKNESS_CHECK,
            asset=ASSET_NAME,
            description=(
                "The section thickness each DM3 states (3View's Slice thickness tag) agrees "
                "with the one recorded from the API (WARN if not)."
            ),
        ),
    ],
)
def empiar_11759(
    context: AssetExecutionContext,
    config: EmpiarConfig,
    storage: StorageRoot,
    empiar: EmpiarApi,
    ebi: EbiFiles,
    http: HttpTransfer,
):  # no return annotation: with check_specs, Dagster would read it as the output's type
    return materialize_file_set(
        DATASET, context, config, storage, http, {"empiar": empiar, "ebi": ebi}
    )


def describe(stored: Stored) -> Description:
    """Voxel size from the API (z from the imageset's free text), cross-checked against
    each DM3's own calibration and slice thickness."""
    found: EntryProbe = stored.probe.details
    entries, entry, imageset_ref = stored.entries, found.entry, found.imageset_ref
    headers: dict[str, Dm3Header] = {name: h.extra for name, h in stored.headers.items()}
    api_xy = found.api_xy_nm()
    thickness = section_thickness_nm(str(found.imageset.get("details") or ""))
    if thickness is None:
        z_nm = FACTS.documented_voxel_size_nm[2]
        z_source = f"documented section thickness (not found in {imageset_ref}.details)"
        stored.log.warning(f"no section thickness in {imageset_ref}.details; using {z_nm:g} nm")
    else:
        z_nm, phrase = thickness
        z_source = f"{imageset_ref}.details ({phrase!r})"
    voxel_source = f"x, y: {imageset_ref}.pixel_width/pixel_height (Å → nm); z: {z_source}"
    files = stored.probe.files
    first = headers[files[0].destination.name]
    middle = files[len(files) // 2]
    calibration = _calibration_problems(headers, api_xy)
    thickness_problems = _thickness_problems(headers, z_nm)
    stated = sorted({h.slice_thickness_nm for h in headers.values() if h.slice_thickness_nm})
    entry_url = found.entry_url
    return Description(
        voxel_size_nm=[*api_xy, z_nm],
        voxel_size_source=voxel_source,
        shape=[len(entries), *first.shape],
        dtype=first.dtype,
        images=slice_stack(stored.root, entries),
        thumbnail=lambda: (read_dm3_image(middle.destination), f"{middle.path}, middle slice"),
        fields={
            "title": str(entry.get("title") or FACTS.title),
            "technique": str(entry.get("experiment_type") or FACTS.technique),
            "doi": str(entry.get("entry_doi") or FACTS.doi),
        },
        provenance={
            "voxel_size_nm": voxel_source,
            "title": f"{entry_url} title",
            "technique": f"{entry_url} experiment_type",
            "doi": f"{entry_url} entry_doi",
            "organism": FACTS.homepage,
            "sample": FACTS.homepage,
            "shape": "slice count and DM3 headers of the downloaded files",
            "dtype": "DM3 headers of the downloaded files",
        },
        metadata={
            "api_image_count": MetadataValue.int(found.expected),
            "refused_listing_entries": MetadataValue.json(found.refused),
        },
        check_results=[
            agrees_with_documentation([*api_xy, z_nm], voxel_source, FACTS, DOCUMENTED_CHECK),
            AssetCheckResult(
                check_name=LISTING_CHECK,
                passed=found.listed >= found.expected,
                severity=AssetCheckSeverity.WARN,
                metadata={
                    "listed": MetadataValue.int(found.listed),
                    "api_count": MetadataValue.int(found.expected),
                },
            ),
            AssetCheckResult(
                check_name=CALIBRATION_CHECK,
                passed=not calibration,
                severity=AssetCheckSeverity.WARN,
                metadata={
                    "api_xy_nm": MetadataValue.json(api_xy),
                    "disagreements": MetadataValue.md(
                        "\n".join(f"- {p}" for p in calibration) or "none"
                    ),
                },
            ),
            AssetCheckResult(
                check_name=THICKNESS_CHECK,
                passed=not thickness_problems,
                severity=AssetCheckSeverity.WARN,
                description=None
                if not thickness_problems
                else f"DM3 slice thickness differs from the recorded {z_nm:g} nm ({z_source})",
                metadata={
                    "recorded_z_nm": MetadataValue.float(z_nm),
                    "recorded_z_from": MetadataValue.text(z_source),
                    "dm3_slice_thickness_nm": MetadataValue.json(stated),
                    "disagreements": MetadataValue.md(
                        "\n".join(f"- {p}" for p in thickness_problems) or "none"
                    ),
                },
            ),
        ],
    )


DATASET = FileSetDataset(
    ASSET_NAME, FACTS, EmpiarConfig, DM3, probe, read_header, describe, refuse, recorded_header
)


@asset_check(
    asset=empiar_11759,
    blocking=True,
    description="Every slice present with its recorded size and sha256, and readable as DM3.",
)
def empiar_files_intact(
    context: AssetCheckExecutionContext, storage: StorageRoot
) -> AssetCheckResult:
    return stored_data_intact(
        storage.base(),
        recorded_manifest(storage, ASSET_NAME),
        readable_by(read_dm3_header),
        deep_requested(context),
        parsed_when_recorded,
    )


SPEC = DatasetSpec(
    name=ASSET_NAME,
    asset=empiar_11759,
    intact_check=empiar_files_intact,
    current_version=current_version(DATASET),
    resources={
        "empiar": lambda: EmpiarApi(base_url=EMPIAR_API_URL.source()),
        "ebi": ebi_files,
    },
)
