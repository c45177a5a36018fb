"""The source check: a cheap, frequent look at each public source's version.

A sensor rather than observable source assets: it records each source's version as an
observation on the dataset asset itself (the graph keeps one asset per dataset), compares it with
the version the stored copy was made from, and launches a run of exactly the datasets whose
source changed, plus the report. A probe reads only metadata: HEAD per file, the EMPIAR and
IDR JSON documents, the precomputed `info`, the zarr attributes.
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster import (
    AssetKey,
    AssetObservation,
    AssetSelection,
    DefaultSensorStatus,
    MetadataValue,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from em_assets.manifest.model import version_digest
from em_assets.refresh.probe import SourceAccess, SourceProbe
from em_assets.refresh.run_config import refresh_run_config
from em_assets.settings import ASSET_GROUP
from em_assets.transfer.resource import HttpTransfer

SENSOR_NAME = "source_check"
CHECK_INTERVAL_S = 3600
REPORT = AssetKey("consolidated_report")


def build_source_check(datasets: Sequence[SourceProbe]) -> SensorDefinition:
    """The sensor over `datasets`, using the resources they declare (resolved by key, so the
    sensor names none of them)."""
    resource_keys = {"storage", "http"} | {key for d in datasets for key in d.resources}

    @sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=CHECK_INTERVAL_S,
        asset_selection=AssetSelection.groups(ASSET_GROUP),
        default_status=DefaultSensorStatus.STOPPED,
        required_resource_keys=resource_keys,
        description=(
            "Hourly: reads each source's version (metadata only), records it on the dataset, "
            "and refreshes exactly the datasets whose source changed, then the report."
        ),
    )
    def source_check(context: SensorEvaluationContext) -> SensorResult:
        resources = {key: getattr(context.resources, key) for key in resource_keys}
        http: HttpTransfer = resources["http"]
        client = http.client(context.log)
        try:
            access = SourceAccess(client, resources["storage"], resources, context.log)
            return _check(context, datasets, access)
        finally:
            client.close()

    return source_check


def _check(
    context: SensorEvaluationContext, datasets: Sequence[SourceProbe], access: SourceAccess
) -> SensorResult:
    storage = access.storage
    observations, changed = [], {}
    for dataset in datasets:
        name = dataset.name
        stored = storage.stored_manifest(name)
        try:
            version = dataset.current_version(access, stored.run_config if stored else {})
        except Exception as error:  # one unreachable source must not hide the others
            context.log.warning(f"{name}: source check failed: {error}")
            observations.append(
                AssetObservation(
                    name, metadata={"source_check_error": MetadataValue.text(str(error))}
                )
            )
            continue
        stored_version = stored.source_version if stored else None
        observations.append(
            AssetObservation(
                name,
                metadata={
                    "source_version": MetadataValue.text(version),
                    "stored_source_version": MetadataValue.text(
                        stored_version or "never materialized"
                    ),
                    "source_changed": MetadataValue.bool(version != stored_version),
                },
            )
        )
        if version != stored_version:
            changed[name] = version
    requests = []
    if changed:
        requests.append(
            RunRequest(
                run_key=version_digest(changed),
                asset_selection=[AssetKey(name) for name in changed] + [REPORT],
                run_config=refresh_run_config(storage, tuple(changed)),
                tags={"em_assets/trigger": SENSOR_NAME},
            )
        )
    return SensorResult(run_requests=requests, asset_events=observations)
