"""A manifest as a Dagster materialization: value, metadata, data version, and what changed.

An unchanged refresh is still a materialization (never "no output", which would mark
downstream steps skipped): it carries the same data version and says since when nothing
changed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from dagster import AssetCheckResult, DataVersion, MaterializeResult, MetadataValue

from em_assets.manifest.metadata import manifest_metadata
from em_assets.manifest.model import Manifest


def settle(manifest: Manifest, previous: Manifest | None) -> tuple[Manifest, bool]:
    """If the source and the stored data are as last time, keep the earlier retrieval time.

    Returns the manifest to store and whether nothing changed.
    """
    now = datetime.now(UTC)
    unchanged = (
        previous is not None
        and previous.source_version == manifest.source_version
        and previous.content_version() == manifest.content_version()
    )
    if unchanged:
        assert previous is not None
        manifest = manifest.model_copy(update={"retrieved_at": previous.retrieved_at})
    return manifest.model_copy(update={"checked_at": now}), unchanged


def materialization(
    manifest: Manifest,
    unchanged: bool,
    payload_bytes: int | None,
    metadata: dict[str, MetadataValue] | None = None,
    check_results: list[AssetCheckResult] | None = None,
    thumbnail: MetadataValue | None = None,
) -> MaterializeResult:
    status = (
        f"unchanged since {manifest.retrieved_at:%Y-%m-%d %H:%M:%S} UTC"
        if unchanged
        else f"retrieved {manifest.retrieved_at:%Y-%m-%d %H:%M:%S} UTC"
    )
    metadata = dict(metadata or {})
    if thumbnail is not None:
        metadata["thumbnail"] = thumbnail
    return MaterializeResult(
        value=manifest,
        data_version=DataVersion(manifest.content_version()),
        metadata={
            **manifest_metadata(manifest),
            "status": MetadataValue.text(status),
            "unchanged": MetadataValue.bool(unchanged),
            **(
                {"payload_bytes": MetadataValue.int(payload_bytes)}
                if payload_bytes is not None
                else {}
            ),
            **metadata,
        },
        check_results=check_results or [],
    )
