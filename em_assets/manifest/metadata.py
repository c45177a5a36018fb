"""Manifests and dataset facts as Dagster metadata, each value with its proper kind."""

from __future__ import annotations

from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from em_assets.manifest.model import DatasetFacts, Manifest

FILES_SCHEMA = TableSchema(
    columns=[
        TableColumn("path", "string", description="relative to the storage root"),
        TableColumn("bytes", "int"),
        TableColumn("sha256", "string"),
        TableColumn("shape", "string", description="z, y, x"),
        TableColumn("dtype", "string"),
    ]
)


def format_voxel_size(voxel_size_nm: list[float] | tuple[float, ...]) -> str:
    x, y, z = (f"{v:g}" for v in voxel_size_nm)
    return f"{x} × {y} × {z} nm (x × y × z)"


def static_metadata(facts: DatasetFacts, source_url: str) -> dict[str, MetadataValue]:
    """What the catalog shows before any run: where the data comes from and what it should be."""
    metadata: dict[str, MetadataValue] = {
        "source": MetadataValue.url(source_url),
        "homepage": MetadataValue.url(facts.homepage),
        "license": MetadataValue.text(facts.license),
        "citation": MetadataValue.text(facts.citation),
        "technique": MetadataValue.text(facts.technique),
        "organism": MetadataValue.text(facts.organism),
        "documented_voxel_size": MetadataValue.text(
            f"{format_voxel_size(facts.documented_voxel_size_nm)} — "
            f"{facts.documented_voxel_size_source}"
        ),
    }
    if facts.doi:
        metadata["doi"] = MetadataValue.url(f"https://doi.org/{facts.doi}")
    return metadata


def manifest_metadata(manifest: Manifest) -> dict[str, MetadataValue]:
    """What one materialization shows: the manifest, readable in the UI."""
    records = [
        TableRecord(
            {
                "path": f.path,
                "bytes": f.bytes,
                "sha256": f.sha256,
                "shape": " × ".join(str(n) for n in f.shape) if f.shape else "",
                "dtype": f.dtype or "",
            }
        )
        for f in manifest.files
    ]
    metadata: dict[str, MetadataValue] = {
        "voxel_size": MetadataValue.text(format_voxel_size(manifest.voxel_size_nm)),
        "voxel_size_nm": MetadataValue.json(
            dict(zip(("x", "y", "z"), manifest.voxel_size_nm, strict=True))
        ),
        "voxel_size_source": MetadataValue.text(manifest.voxel_size_source),
        "isotropic": MetadataValue.bool(manifest.isotropic),
        "technique": MetadataValue.text(manifest.technique),
        "organism": MetadataValue.text(manifest.organism),
        "sample": MetadataValue.text(manifest.sample),
        "shape": MetadataValue.text(
            " × ".join(f"{n} {a}" for n, a in zip(manifest.shape, manifest.axes, strict=True))
        ),
        "dtype": MetadataValue.text(manifest.dtype),
        "file_count": MetadataValue.int(manifest.file_count),
        "total_bytes": MetadataValue.int(manifest.total_bytes),
        "files": MetadataValue.table(records, schema=FILES_SCHEMA),
        "source_url": MetadataValue.url(manifest.source_urls[0]),
        "license": MetadataValue.text(manifest.license),
        "citation": MetadataValue.text(manifest.citation),
        "provenance": MetadataValue.json(manifest.provenance),
        "retrieved_at": MetadataValue.timestamp(manifest.retrieved_at),
        "source_version": MetadataValue.text(manifest.source_version),
    }
    if len(manifest.source_urls) > 1:
        metadata["source_urls"] = MetadataValue.md(
            "\n".join(f"- <{url}>" for url in manifest.source_urls)
        )
    if manifest.doi:
        metadata["doi"] = MetadataValue.url(f"https://doi.org/{manifest.doi}")
    if manifest.crop is not None:
        metadata["crop"] = MetadataValue.json(manifest.crop.model_dump(mode="json"))
    if manifest.array_path is not None:
        metadata["array_path"] = MetadataValue.path(manifest.array_path)
    if manifest.images:
        metadata["images"] = MetadataValue.json([i.model_dump() for i in manifest.images])
    if manifest.neuroglancer_url:
        metadata["neuroglancer_url"] = MetadataValue.url(manifest.neuroglancer_url)
    return metadata
