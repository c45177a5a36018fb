"""Assembles the scale-out variant from the registry: each crop dataset as block partitions
plus its assembling asset, every other dataset, the checks and the report as usual.

The refresh schedule, the source check and the deep verification are left out: they launch
one unpartitioned run of the whole group, which cannot include the partitioned block assets
(a run targets one partition); scale-out refreshes run the partitions, then the assembling
assets, as the README's "Running at scale" shows. The executor is left to the deployment
(`em_assets.deploy.scale_out` adds Celery); loaded alone, runs use Dagster's default.
"""

from collections.abc import Sequence

from dagster import Definitions

from em_assets.datasets.registry import DATASETS
from em_assets.datasets.spec import DatasetSpec
from em_assets.garbage_collection import freeze_loaded_code
from em_assets.report.asset import build_consolidated_report
from em_assets.resources import default_resources
from em_assets.scale_out.partitioned_crops import partitioned_crop


def build_scale_out(datasets: Sequence[DatasetSpec] = DATASETS) -> Definitions:
    assets = []
    for spec in datasets:
        assets.extend(partitioned_crop(spec) if spec.crop is not None else [spec.asset])
    return Definitions(
        assets=[*assets, build_consolidated_report([spec.name for spec in datasets])],
        asset_checks=[check for spec in datasets for check in spec.checks],
        resources=default_resources(datasets),
    )


defs = build_scale_out()
freeze_loaded_code()  # see garbage_collection.py
