"""Assembles the project for Dagster: assets, checks and the resources they are wired to."""

from dagster import Definitions

from em_assets.datasets import (
    empiar_11759,
    epfl_hippocampus,
    flyem_hemibrain,
    idr_0086,
    openorganelle_jrc,
)
from em_assets.execution import in_process_or_multiprocess
from em_assets.refresh.deep_verify import build_deep_verify
from em_assets.refresh.schedule import build_refresh_schedule
from em_assets.refresh.source_check import source_check
from em_assets.report import asset as report
from em_assets.resources import default_resources

ASSETS = [
    epfl_hippocampus.epfl_hippocampus,
    flyem_hemibrain.flyem_hemibrain,
    empiar_11759.empiar_11759,
    idr_0086.idr_0086,
    openorganelle_jrc.openorganelle_jrc,
    report.consolidated_report,
]
CHECKS = [
    epfl_hippocampus.epfl_files_intact,
    flyem_hemibrain.hemibrain_crop_intact,
    flyem_hemibrain.hemibrain_voxel_size_documented,
    flyem_hemibrain.hemibrain_labels_aligned,
    flyem_hemibrain.hemibrain_crop_mostly_background,
    empiar_11759.empiar_files_intact,
    empiar_11759.empiar_voxel_size_documented,
    idr_0086.idr_files_intact,
    idr_0086.idr_voxel_size_documented,
    openorganelle_jrc.openorganelle_crop_intact,
    openorganelle_jrc.openorganelle_voxel_size_documented,
    openorganelle_jrc.openorganelle_labels_aligned,
    openorganelle_jrc.openorganelle_crop_mostly_background,
]
INTACT_CHECKS = [
    epfl_hippocampus.epfl_files_intact,
    flyem_hemibrain.hemibrain_crop_intact,
    empiar_11759.empiar_files_intact,
    idr_0086.idr_files_intact,
    openorganelle_jrc.openorganelle_crop_intact,
]
deep_verify, deep_verify_schedule = build_deep_verify(INTACT_CHECKS)

defs = Definitions(
    assets=ASSETS,
    asset_checks=CHECKS,
    executor=in_process_or_multiprocess,
    jobs=[deep_verify],
    schedules=[build_refresh_schedule(), deep_verify_schedule],
    sensors=[source_check],
    resources=default_resources(),
)
