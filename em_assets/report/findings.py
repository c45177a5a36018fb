"""What the comparison says, computed only from the manifests (never from constants)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from em_assets.manifest.model import ImageEntry, Manifest, version_digest
from em_assets.report.techniques import technique_group

VOXEL_TIE_TOLERANCE = 1e-6


class DatasetRow(BaseModel):
    voxel_size_nm: list[float] = Field(description="x, y, z")
    voxel_volume_nm3: float
    technique: str
    technique_group: str
    organism: str
    sample: str
    file_count: int
    total_bytes: int
    isotropic: bool
    anisotropy: float = Field(description="z over the mean of x and y")
    labels: str = Field(default="", description="label images stored with the data, if any")
    sources: dict[str, str] = Field(description="field -> where its value came from")
    images: list[ImageEntry] = Field(default_factory=list, description="its OME-Zarr images")
    neuroglancer_url: str | None = None


class Extreme(BaseModel):
    voxel_size_nm: list[float]
    voxel_volume_nm3: float
    datasets: list[str]


class Anisotropic(BaseModel):
    dataset: str
    ratio: float


class TechniqueCount(BaseModel):
    count: int
    percent: float
    datasets: list[str]


class Findings(BaseModel):
    finest: Extreme
    coarsest: Extreme
    isotropic_count: int
    dataset_count: int
    anisotropic: list[Anisotropic]
    techniques: dict[str, TechniqueCount]
    organisms: list[str]
    total_bytes: int
    largest: list[str]
    smallest: list[str]
    size_span_orders_of_magnitude: float | None = Field(
        description="log10 of largest over smallest non-empty dataset; None if fewer than two"
    )
    empty_datasets: list[str]


class Summary(BaseModel):
    dataset_count: int
    datasets: list[str]


class Report(BaseModel):
    summary: Summary
    datasets: dict[str, DatasetRow]
    findings: Findings
    input_versions: dict[str, str] = Field(description="dataset -> data version compared")
    generated_at: datetime
    outputs: dict[str, str] = Field(
        default_factory=dict,
        description="file written beside the report (.md, .csv, chart) -> its sha256",
    )

    def same_comparison(self, other: Report) -> bool:
        """Whether `other` says everything this report says (when, and the files written
        from it, aside)."""
        ignored = {"generated_at", "outputs"}
        return self.model_dump(exclude=ignored) == other.model_dump(exclude=ignored)

    def data_version(self) -> str:
        """Follows the inputs only: the same datasets give the same report version."""
        return version_digest(self.input_versions)


def label_summary(manifest: Manifest) -> str:
    """Each stored label and whether it shares the data's grid, e.g. `segmentation (copied)`."""
    return ", ".join(
        f"{label.name} ({label.treatment.replace('_', ' ')})" for label in manifest.labels
    )


def dataset_row(manifest: Manifest) -> DatasetRow:
    x, y, z = manifest.voxel_size_nm
    provenance = manifest.provenance
    return DatasetRow(
        voxel_size_nm=manifest.voxel_size_nm,
        voxel_volume_nm3=x * y * z,
        technique=manifest.technique,
        technique_group=technique_group(manifest.technique),
        organism=manifest.organism,
        sample=manifest.sample,
        file_count=manifest.file_count,
        total_bytes=manifest.total_bytes,
        isotropic=manifest.isotropic,
        anisotropy=round(z / ((x + y) / 2), 4),
        labels=label_summary(manifest),
        sources={
            "voxel_size_nm": manifest.voxel_size_source,
            "technique": provenance.get("technique", manifest.citation),
            "organism": provenance.get("organism", manifest.citation),
            "sample": provenance.get("sample", manifest.citation),
            "file_count": "manifest files (stored copies)",
            "total_bytes": "manifest files (stored copies)",
        },
        images=manifest.images,
        neuroglancer_url=manifest.neuroglancer_url,
    )


def _extreme(rows: dict[str, DatasetRow], pick) -> Extreme:
    target = pick(row.voxel_volume_nm3 for row in rows.values())
    names = sorted(
        name
        for name, row in rows.items()
        if math.isclose(row.voxel_volume_nm3, target, rel_tol=VOXEL_TIE_TOLERANCE)
    )
    return Extreme(
        voxel_size_nm=rows[names[0]].voxel_size_nm, voxel_volume_nm3=target, datasets=names
    )


def findings(rows: dict[str, DatasetRow]) -> Findings:
    """The comparison. Finest and coarsest are by voxel volume; ties name every dataset."""
    count = len(rows)
    groups: dict[str, list[str]] = {}
    for name, row in sorted(rows.items()):
        groups.setdefault(row.technique_group, []).append(name)
    sized = {name: row.total_bytes for name, row in rows.items() if row.total_bytes > 0}
    span = None
    if len(sized) >= 2:
        span = round(math.log10(max(sized.values()) / min(sized.values())), 2)
    largest = max(sized.values(), default=0)
    smallest = min(sized.values(), default=0)
    return Findings(
        finest=_extreme(rows, min),
        coarsest=_extreme(rows, max),
        isotropic_count=sum(row.isotropic for row in rows.values()),
        dataset_count=count,
        anisotropic=[
            Anisotropic(dataset=name, ratio=row.anisotropy)
            for name, row in sorted(rows.items())
            if not row.isotropic
        ],
        techniques={
            group: TechniqueCount(
                count=len(names), percent=round(100 * len(names) / count, 1), datasets=names
            )
            for group, names in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
        },
        organisms=sorted({row.organism for row in rows.values()}),
        total_bytes=sum(row.total_bytes for row in rows.values()),
        largest=sorted(name for name, size in sized.items() if size == largest),
        smallest=sorted(name for name, size in sized.items() if size == smallest),
        size_span_orders_of_magnitude=span,
        empty_datasets=sorted(name for name, row in rows.items() if row.file_count == 0),
    )


def build_report(manifests: dict[str, Manifest]) -> Report:
    rows = {name: dataset_row(manifest) for name, manifest in sorted(manifests.items())}
    return Report(
        summary=Summary(dataset_count=len(rows), datasets=list(rows)),
        datasets=rows,
        findings=findings(rows),
        input_versions={name: m.content_version() for name, m in sorted(manifests.items())},
        generated_at=datetime.now(UTC),
    )
