"""Assembles the scale-out variant: the crops as block partitions, everything else as usual."""

from dagster import Definitions

from em_assets.datasets import empiar_11759, epfl_hippocampus, idr_0086
from em_assets.definitions import CHECKS
from em_assets.report import asset as report
from em_assets.resources import default_resources
from em_assets.scale_out import partitioned_crops

ASSETS = [
    epfl_hippocampus.epfl_hippocampus,
    empiar_11759.empiar_11759,
    idr_0086.idr_0086,
    *partitioned_crops.ASSETS,
    report.consolidated_report,
]

defs = Definitions(assets=ASSETS, asset_checks=CHECKS, resources=default_resources())
