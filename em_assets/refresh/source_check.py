"""The source check: a cheap, frequent look at each public source's version.

A sensor rather than observable source assets: it records each source's version as an
observation on the dataset asset itself (the graph keeps its six assets), compares it with
the version the stored copy was made from, and launches a run of exactly the datasets whose
source changed, plus the report. A probe reads only metadata: HEAD per file, the EMPIAR and
IDR JSON documents, the precomputed `info`, the zarr attributes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dagster import (
    AssetKey,
    AssetObservation,
    AssetSelection,
    DefaultSensorStatus,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from em_assets.datasets import (
    empiar_11759,
    epfl_hippocampus,
    flyem_hemibrain,
    idr_0086,
    openorganelle_jrc,
)
from em_assets.manifest.model import version_digest
from em_assets.refresh.run_config import refresh_run_config
from em_assets.settings import ASSET_GROUP
from em_assets.sources import (
    EbiFiles,
    EmpiarApi,
    EpflServer,
    HemibrainVolume,
    IdrApi,
    OpenOrganelleStore,
)
from em_assets.storage.root import StorageRoot
from em_assets.transfer.resource import HttpTransfer

SENSOR_NAME = "source_check"
CHECK_INTERVAL_S = 3600
REPORT = AssetKey("consolidated_report")

Probe = Callable[[dict[str, Any]], str]


@sensor(
    name=SENSOR_NAME,
    minimum_interval_seconds=CHECK_INTERVAL_S,
    asset_selection=AssetSelection.groups(ASSET_GROUP),
    default_status=DefaultSensorStatus.STOPPED,
    description=(
        "Hourly: reads each source's version (metadata only), records it on the dataset, and "
        "refreshes exactly the datasets whose source changed, then the report."
    ),
)
def source_check(
    context: SensorEvaluationContext,
    storage: StorageRoot,
    http: HttpTransfer,
    epfl: EpflServer,
    hemibrain: HemibrainVolume,
    empiar: EmpiarApi,
    ebi: EbiFiles,
    idr: IdrApi,
    openorganelle: OpenOrganelleStore,
) -> SensorResult:
    client = http.client(context.log)
    probes: dict[str, Probe] = {
        "epfl_hippocampus": lambda cfg: epfl_hippocampus.current_version(
            client, epfl, storage, cfg
        ),
        "flyem_hemibrain": lambda cfg: flyem_hemibrain.current_version(hemibrain),
        "empiar_11759": lambda cfg: empiar_11759.current_version(
            client, empiar, ebi, storage, cfg, context.log
        ),
        "idr_0086": lambda cfg: idr_0086.current_version(client, ebi, idr, storage),
        "openorganelle_jrc": lambda cfg: openorganelle_jrc.current_version(openorganelle),
    }
    observations, changed = [], {}
    try:
        for name, probe in probes.items():
            stored = storage.stored_manifest(name)
            try:
                version = probe(stored.run_config if stored else {})
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
    finally:
        client.close()
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
