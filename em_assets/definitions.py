"""Assembles the project for Dagster: assets, checks and the resources they are wired to."""

from dagster import Definitions

from em_assets.datasets import epfl_hippocampus
from em_assets.resources import default_resources

defs = Definitions(
    assets=[epfl_hippocampus.epfl_hippocampus],
    asset_checks=[epfl_hippocampus.epfl_files_intact],
    resources=default_resources(),
)
