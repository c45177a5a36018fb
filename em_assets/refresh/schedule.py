"""The full refresh on a schedule: every dataset and the report, each skipping what has not
changed.

Stopped by default, as is the Dagster convention: a deployment turns it on deliberately.
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster import (
    AssetSelection,
    DagsterInvalidDefinitionError,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)

from em_assets.refresh.run_config import refresh_run_config
from em_assets.settings import ASSET_GROUP, REFRESH_CRON, ConfigurationError
from em_assets.storage.root import StorageRoot

SCHEDULE_NAME = "weekly_refresh"


def build_refresh_schedule(datasets: Sequence[str]) -> ScheduleDefinition:
    """The schedule refreshing `datasets` (by name) and the report, with its cron from
    `EM_REFRESH_CRON` (checked here, named if wrong)."""
    cron = REFRESH_CRON.value()
    try:

        @schedule(
            name=SCHEDULE_NAME,
            cron_schedule=cron,
            target=AssetSelection.groups(ASSET_GROUP),
            default_status=DefaultScheduleStatus.STOPPED,
            description=(
                f"Refreshes the {len(datasets)} datasets and the report. Unchanged sources "
                f"move no payload and keep their data version. Cron from {REFRESH_CRON.name}."
            ),
        )
        def weekly_refresh(context: ScheduleEvaluationContext, storage: StorageRoot) -> RunRequest:
            return RunRequest(
                run_key=None,
                run_config=refresh_run_config(storage, datasets),
                tags={"em_assets/trigger": "schedule"},
            )

    except DagsterInvalidDefinitionError as error:
        raise ConfigurationError(
            f"{REFRESH_CRON.name}={cron!r} is not a valid cron expression "
            f"(e.g. '0 4 * * 1' for Mondays 04:00): {error}"
        ) from error
    return weekly_refresh
