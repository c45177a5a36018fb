"""Assembles the project for Dagster from the registry: every dataset's asset and checks,
the report over all of them, the refreshes watching them, and the resources they use.
Once built, everything loaded is frozen out of the garbage collector's walks
(`garbage_collection.py`: a re-run's full collections cost a second)."""

from collections.abc import Sequence

from dagster import Definitions

from em_assets.datasets.registry import DATASETS
from em_assets.datasets.spec import DatasetSpec
from em_assets.execution import in_process_or_multiprocess
from em_assets.garbage_collection import freeze_loaded_code
from em_assets.refresh.deep_verify import build_deep_verify
from em_assets.refresh.schedule import build_refresh_schedule
from em_assets.refresh.source_check import build_source_check
from em_assets.report.asset import build_consolidated_report
from em_assets.resources import default_resources


def build_definitions(datasets: Sequence[DatasetSpec] = DATASETS) -> Definitions:
    """The project over `datasets` (the registry's, or another list: a test's extra dataset,
    a trimmed deployment); everything below iterates them."""
    names = [spec.name for spec in datasets]
    deep_verify, deep_verify_schedule = build_deep_verify(
        [check for s in datasets for check in (s.intact_check, s.images_check)]
    )
    return Definitions(
        assets=[*(spec.asset for spec in datasets), build_consolidated_report(names)],
        asset_checks=[check for spec in datasets for check in spec.checks],
        executor=in_process_or_multiprocess,
        jobs=[deep_verify],
        schedules=[build_refresh_schedule(names), deep_verify_schedule],
        sensors=[build_source_check(datasets)],
        resources=default_resources(datasets),
    )


defs = build_definitions()
ASSETS = list(defs.assets or [])
CHECKS = list(defs.asset_checks or [])
freeze_loaded_code()
