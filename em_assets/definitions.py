"""Assembles the project for Dagster: assets, checks and the resources they are wired to."""

from dagster import Definitions

from em_assets.datasets import epfl_hippocampus, flyem_hemibrain, idr_0086, openorganelle_jrc
from em_assets.resources import default_resources

defs = Definitions(
    assets=[
        epfl_hippocampus.epfl_hippocampus,
        flyem_hemibrain.flyem_hemibrain,
        idr_0086.idr_0086,
        openorganelle_jrc.openorganelle_jrc,
    ],
    asset_checks=[
        epfl_hippocampus.epfl_files_intact,
        flyem_hemibrain.hemibrain_crop_intact,
        flyem_hemibrain.hemibrain_voxel_size_documented,
        idr_0086.idr_files_intact,
        idr_0086.idr_voxel_size_documented,
        openorganelle_jrc.openorganelle_crop_intact,
        openorganelle_jrc.openorganelle_voxel_size_documented,
    ],
    resources=default_resources(),
)
