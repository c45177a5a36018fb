"""consolidated_report: every dataset's manifest compared, in the run log, the UI and on storage."""

import base64
import hashlib
from collections.abc import Sequence

from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
)
from pydantic import ValidationError
from upath import UPath

from em_assets.manifest.model import Manifest
from em_assets.report.findings import Report, build_report
from em_assets.report.render import (
    comparison_records,
    comparison_table,
    console_table,
    key_findings,
    markdown,
    voxel_chart_png,
)
from em_assets.settings import ASSET_GROUP
from em_assets.storage.io_manager import StoredManifest
from em_assets.storage.root import StorageRoot
from em_assets.storage.staging import write_atomically

ASSET_NAME = "consolidated_report"
REPORT_INPUTS = "report_inputs"
"""The input manager that loads each dataset's manifest as found (present, missing or
unreadable), so every one that is not usable is named at once."""
CHART = f"{ASSET_NAME}_voxel_sizes.png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BUILD_ALL = "dagster asset materialize -m em_assets --select '*consolidated_report'"
TABLE_SCHEMA = TableSchema(
    columns=[
        TableColumn("dataset", "string"),
        TableColumn("technique", "string"),
        TableColumn("technique_group", "string"),
        TableColumn("organism", "string"),
        TableColumn("sample", "string"),
        TableColumn("voxel_x_nm", "float"),
        TableColumn("voxel_y_nm", "float"),
        TableColumn("voxel_z_nm", "float"),
        TableColumn("isotropic", "bool"),
        TableColumn("anisotropy", "float", description="z over the mean of x and y"),
        TableColumn("file_count", "int"),
        TableColumn("total_bytes", "int"),
    ]
)


class MissingDatasetsError(RuntimeError):
    """The report needs every dataset, and some were never materialized in this root."""


class UnreadableManifestsError(RuntimeError):
    """The report needs every dataset, and some stored manifests cannot be read."""


def _present(stored: list[StoredManifest], root: str) -> dict[str, Manifest]:
    unreadable = [s for s in stored if s.manifest is None and s.problem != "never materialized"]
    if unreadable:
        names = ",".join(s.name for s in unreadable)
        raise UnreadableManifestsError(
            f"consolidated_report cannot read {len(unreadable)} stored manifest(s):\n"
            + "\n".join(f"- {s.name}: {s.problem}" for s in unreadable)
            + f"\nRebuild {'it' if len(unreadable) == 1 else 'them'} with: "
            f"dagster asset materialize -m em_assets --select '{names}'"
        )
    missing = [s.name for s in stored if s.manifest is None]
    if missing:
        raise MissingDatasetsError(
            f"consolidated_report compares all {len(stored)} datasets, but {', '.join(missing)} "
            f"{'has' if len(missing) == 1 else 'have'} never been materialized in {root}. "
            f"Build everything with: {BUILD_ALL}"
        )
    return {s.name: s.manifest for s in stored if s.manifest is not None}


def build_consolidated_report(datasets: Sequence[str]) -> AssetsDefinition:
    """The report over `datasets` (asset names), each loaded as found so every missing or
    unreadable one is named at once."""

    @asset(
        name=ASSET_NAME,
        group_name=ASSET_GROUP,
        kinds={"json", "csv", "markdown"},
        code_version="1",
        ins={name: AssetIn(key=name, input_manager_key=REPORT_INPUTS) for name in datasets},
        description=(
            f"Compares the {len(datasets)} datasets from their manifests: voxel sizes and "
            "isotropy, techniques, organisms, sizes. Writes consolidated_report.json (the "
            "value), .md, .csv and a voxel-size chart beside it; reads no data files."
        ),
    )
    def consolidated_report(
        context: AssetExecutionContext, storage: StorageRoot, **manifests: StoredManifest
    ) -> MaterializeResult:
        return _report(context, storage, [manifests[name] for name in datasets])

    return consolidated_report


def _report(
    context: AssetExecutionContext, storage: StorageRoot, stored: list[StoredManifest]
) -> MaterializeResult:
    root = storage.base()
    manifests = _present(stored, str(root))
    report = build_report(manifests)
    previous = _previous_report(storage)
    kept = _kept_report(report, previous, root)
    if kept is not None:
        report, chart = kept
        how = (
            f"unchanged since the report of {report.generated_at:%Y-%m-%d %H:%M UTC}, kept "
            f"with its files ({', '.join(report.outputs)})"
        )
    else:
        report, chart = _render(report, previous, root)
        how = "rendered"
    context.log.info(  # one event: each log line is a Dagster event written to storage
        f"Comparison of the {len(manifests)} datasets ({how}):\n"
        + console_table(comparison_records(report))
        + "\n"
        + "\n".join(key_findings(report))
    )
    return MaterializeResult(
        value=report,
        data_version=DataVersion(report.data_version()),
        metadata=_metadata(report, chart, root),
    )


def _render(report: Report, previous: Report | None, root: UPath) -> tuple[Report, bytes]:
    """Write the report's .md, .csv and chart; the report records what it wrote."""
    table = comparison_table(report)
    chart = _stored_chart(report, previous, root)
    if chart is None:
        chart = voxel_chart_png(report)
        write_atomically(root / CHART, chart)
    document = markdown(report, table) + f"\n![Voxel size per axis]({CHART})\n"
    written = {
        f"{ASSET_NAME}.md": document.encode(),
        f"{ASSET_NAME}.csv": table.to_csv(index=False).encode(),
    }
    for name, body in written.items():
        write_atomically(root / name, body)
    outputs = {name: _sha256(body) for name, body in {**written, CHART: chart}.items()}
    return report.model_copy(update={"outputs": outputs}), chart


def _previous_report(storage: StorageRoot) -> Report | None:
    try:
        return Report.model_validate_json(storage.manifest_path(ASSET_NAME).read_bytes())
    except (FileNotFoundError, ValidationError):
        return None


def _kept_report(
    report: Report, previous: Report | None, root: UPath
) -> tuple[Report, bytes] | None:
    """The last report and its chart, if it says everything `report` says and its files
    are still the bytes it wrote: an unchanged refresh then renders nothing (rendering
    imports pandas, about a second of it) and rewrites nothing. A changed input, or a
    file edited, deleted or never recorded, means the report is rendered again."""
    if previous is None or not previous.outputs or not report.same_comparison(previous):
        return None
    chart = b""
    for name, digest in previous.outputs.items():
        try:
            body = (root / name).read_bytes()  # the report's own small files, not data
        except FileNotFoundError:
            return None
        if _sha256(body) != digest:
            return None
        chart = body if name == CHART else chart
    return (previous, chart) if chart.startswith(PNG_SIGNATURE) else None


def _sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _stored_chart(report: Report, previous: Report | None, root: UPath) -> bytes | None:
    """The chart the last report drew, if it showed the same thing: the chart is a function
    of the datasets' names and voxel sizes alone, and drawing it again imports matplotlib,
    about a second of a refresh. None: draw it."""
    if previous is None:
        return None
    try:
        chart = (root / CHART).read_bytes()
    except FileNotFoundError:
        return None
    shown = [(name, row.voxel_size_nm) for name, row in report.datasets.items()]
    before = [(name, row.voxel_size_nm) for name, row in previous.datasets.items()]
    return chart if shown == before and chart.startswith(PNG_SIGNATURE) else None


def _metadata(report: Report, chart: bytes, root: UPath) -> dict[str, MetadataValue]:
    records = [TableRecord(record) for record in comparison_records(report)]
    chart_md = f"![Voxel size per axis](data:image/png;base64,{base64.b64encode(chart).decode()})"
    findings = report.findings
    return {
        "comparison": MetadataValue.table(records, schema=TABLE_SCHEMA),
        "findings": MetadataValue.md("\n".join(f"- {line}" for line in key_findings(report))),
        "voxel_size_chart": MetadataValue.md(chart_md),
        "dataset_count": MetadataValue.int(findings.dataset_count),
        "isotropic_count": MetadataValue.int(findings.isotropic_count),
        "organism_count": MetadataValue.int(len(findings.organisms)),
        "total_bytes": MetadataValue.int(findings.total_bytes),
        "markdown_report": MetadataValue.path(str(root / f"{ASSET_NAME}.md")),
        "csv_report": MetadataValue.path(str(root / f"{ASSET_NAME}.csv")),
    }
