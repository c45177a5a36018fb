"""consolidated_report: every dataset's manifest compared, in the run log, the UI and on storage."""

import base64
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

from em_assets.manifest.model import Manifest
from em_assets.report.findings import Report, build_report
from em_assets.report.render import (
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
    table = comparison_table(report)
    chart = _stored_chart(report, storage)
    if chart is None:
        chart = voxel_chart_png(report)
        write_atomically(root / CHART, chart)
    document = markdown(report, table) + f"\n![Voxel size per axis]({CHART})\n"
    write_atomically(root / f"{ASSET_NAME}.md", document.encode())
    write_atomically(root / f"{ASSET_NAME}.csv", table.to_csv(index=False).encode())

    context.log.info(f"Comparison of the {len(manifests)} datasets:\n" + console_table(table))
    for line in key_findings(report):
        context.log.info(line)
    return MaterializeResult(
        value=report,
        data_version=DataVersion(report.data_version()),
        metadata=_metadata(report, table, chart, root),
    )


def _stored_chart(report: Report, storage: StorageRoot) -> bytes | None:
    """The chart the last report drew, if it showed the same thing: the chart is a function
    of the datasets' names and voxel sizes alone, and drawing it again imports matplotlib,
    about a second of an unchanged refresh. None: draw it."""
    try:
        previous = Report.model_validate_json(storage.manifest_path(ASSET_NAME).read_bytes())
        chart = (storage.base() / CHART).read_bytes()
    except (FileNotFoundError, ValidationError):
        return None
    shown = [(name, row.voxel_size_nm) for name, row in report.datasets.items()]
    before = [(name, row.voxel_size_nm) for name, row in previous.datasets.items()]
    return chart if shown == before and chart.startswith(PNG_SIGNATURE) else None


def _metadata(report: Report, table, chart: bytes, root) -> dict[str, MetadataValue]:
    records = [TableRecord(record) for record in table.to_dict(orient="records")]
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
