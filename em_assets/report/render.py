"""The report for people: a comparison table (markdown, CSV, console), key findings, a chart."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np

from em_assets.report.findings import Report
from em_assets.transfer.progress import human_bytes

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = [
    "dataset", "technique", "technique_group", "organism", "sample", "voxel_x_nm",
    "voxel_y_nm", "voxel_z_nm", "isotropic", "anisotropy", "file_count", "total_bytes",
    "labels",
]  # fmt: skip


def comparison_records(report: Report) -> list[dict[str, Any]]:
    """One record per dataset, the columns of the comparison (plain values: no pandas)."""
    records = []
    for name, row in report.datasets.items():
        x, y, z = row.voxel_size_nm
        records.append(
            {
                "dataset": name,
                "technique": row.technique,
                "technique_group": row.technique_group,
                "organism": row.organism,
                "sample": row.sample,
                "voxel_x_nm": x,
                "voxel_y_nm": y,
                "voxel_z_nm": z,
                "isotropic": row.isotropic,
                "anisotropy": row.anisotropy,
                "file_count": row.file_count,
                "total_bytes": row.total_bytes,
                "labels": row.labels,
            }
        )
    return records


def comparison_table(report: Report) -> pd.DataFrame:
    """The comparison records as a table, for the Markdown, CSV and console renderings."""
    # Imported here: pandas adds ~30 MB to every process that loads the code location,
    # including each download step; only the report needs it, and an unchanged report
    # (kept whole, see report.asset) not even that.
    import pandas as pd

    return pd.DataFrame.from_records(comparison_records(report), columns=COLUMNS)


def _voxel(values: list[float]) -> str:
    return " × ".join(f"{v:g}" for v in values)


def key_findings(report: Report) -> list[str]:
    f = report.findings
    lines = [
        f"Finest voxels: {_voxel(f.finest.voxel_size_nm)} nm ({', '.join(f.finest.datasets)}).",
        f"Coarsest voxels: {_voxel(f.coarsest.voxel_size_nm)} nm "
        f"({', '.join(f.coarsest.datasets)}).",
        f"Isotropic: {f.isotropic_count} of {f.dataset_count} datasets.",
    ]
    for item in f.anisotropic:
        lines.append(f"Anisotropic: {item.dataset} (z is {item.ratio:g} × the xy size).")
    groups = ", ".join(f"{name} {t.count} ({t.percent:g} %)" for name, t in f.techniques.items())
    lines.append(f"Techniques: {groups}.")
    lines.append(f"Organisms ({len(f.organisms)}): {', '.join(f.organisms)}.")
    size_line = f"Total stored: {human_bytes(f.total_bytes)}"
    if f.size_span_orders_of_magnitude is not None:
        size_line += (
            f"; sizes span {f.size_span_orders_of_magnitude:g} orders of magnitude "
            f"(largest {', '.join(f.largest)}, smallest {', '.join(f.smallest)})"
        )
    lines.append(size_line + ".")
    if f.empty_datasets:
        lines.append(f"No files stored for: {', '.join(f.empty_datasets)}.")
    return lines


def markdown_table(table: pd.DataFrame) -> str:
    shown = table.assign(
        voxel_nm=[
            _voxel([x, y, z])
            for x, y, z in zip(table.voxel_x_nm, table.voxel_y_nm, table.voxel_z_nm, strict=True)
        ],
        size=[human_bytes(b) for b in table.total_bytes],
        labels_shown=[labels or "—" for labels in table.labels],
    )[
        [
            "dataset",
            "technique",
            "organism",
            "sample",
            "voxel_nm",
            "anisotropy",
            "file_count",
            "size",
            "labels_shown",
        ]
    ].rename(columns={"labels_shown": "labels"})
    header = "| " + " | ".join(shown.columns) + " |"
    rule = "|" + "---|" * len(shown.columns)
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def markdown(report: Report, table: pd.DataFrame) -> str:
    f = report.findings
    techniques = "\n".join(
        f"- **{name}**: {t.count} ({t.percent:g} %) — {', '.join(t.datasets)}"
        for name, t in f.techniques.items()
    )
    variants = "\n".join(
        f"- {name}: {row.technique} (grouped as {row.technique_group})"
        for name, row in report.datasets.items()
    )
    sources = "\n".join(
        f"- {name}: {row.sources['voxel_size_nm']}" for name, row in report.datasets.items()
    )
    findings_md = "\n".join(f"- {line}" for line in key_findings(report))
    images = images_markdown(report)
    return f"""# EM datasets: consolidated report

Generated {report.generated_at:%Y-%m-%d %H:%M UTC} from {report.summary.dataset_count} manifests:
{", ".join(report.summary.datasets)}.

## Key findings

{findings_md}

## Comparison

{markdown_table(table)}

## Resolution

- Finest: {_voxel(f.finest.voxel_size_nm)} nm — {", ".join(f.finest.datasets)}
- Coarsest: {_voxel(f.coarsest.voxel_size_nm)} nm — {", ".join(f.coarsest.datasets)}
- Isotropic: {f.isotropic_count} of {f.dataset_count}

## Techniques

{techniques}

Variants as the sources name them:

{variants}

## Where the voxel sizes come from

{sources}

## Images (OME-Zarr, NGFF 0.4)

Paths are relative to the storage root; `em_assets.open_image(dataset, name=...)` opens any.

{images}
"""


def images_markdown(report: Report) -> str:
    lines = []
    for name, row in report.datasets.items():
        if not row.images:
            lines.append(f"- {name}: none listed (materialized before images existed)")
        for image in row.images:
            labels = f", labels: {', '.join(image.labels)}" if image.labels else ""
            shape = " × ".join(str(n) for n in image.shape_zyx)
            lines.append(f"- {name} / `{image.name}`: `{image.path}`, {shape} (z × y × x){labels}")
        if row.neuroglancer_url:
            lines.append(f"  - [the crop in Neuroglancer]({row.neuroglancer_url})")
    return "\n".join(lines)


def console_table(records: list[dict[str, Any]]) -> str:
    """The comparison as fixed-width text, for the run log; plain Python, so a kept report
    shows it without importing pandas."""
    columns = [c for c in COLUMNS if c not in ("technique_group", "sample")]
    cells = [columns, *([f"{record[c]}" for c in columns] for record in records)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join(
        " ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in cells
    )


def voxel_chart_png(report: Report) -> bytes:
    """Grouped bars: voxel size per axis per dataset (nm, log scale when sizes differ widely)."""
    names = list(report.datasets)
    sizes = np.array([report.datasets[n].voxel_size_nm for n in names])
    positions = np.arange(len(names))
    # Imported here: matplotlib costs ~0.4 s for every process that loads the code location.
    # A bare Figure (no pyplot) keeps no global state and needs no display backend.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 3.6), dpi=100)
    axes = figure.subplots()
    for offset, (axis, colour) in enumerate(
        zip("xyz", ("#4c72b0", "#55a868", "#c44e52"), strict=True)
    ):
        axes.bar(positions + (offset - 1) * 0.25, sizes[:, offset], 0.25, label=axis, color=colour)
    axes.set_xticks(positions, names, rotation=15, ha="right", fontsize=8)
    axes.set_ylabel("voxel size (nm)")
    if sizes.max() / sizes.min() > 20:
        axes.set_yscale("log")
    axes.set_title("Voxel size per axis")
    axes.legend(title="axis", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
