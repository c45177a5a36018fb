"""How stale a dataset may get: the weekly refresh keeps it well inside this window."""

from datetime import timedelta

from dagster import FreshnessPolicy

DATASET_FRESHNESS = FreshnessPolicy.time_window(
    warn_window=timedelta(days=8), fail_window=timedelta(days=15)
)
