"""The code location loads the way Dagster loads it, with every asset described and wired."""

import importlib
import subprocess
import sys
import tomllib

import yaml
from dagster import AssetKey, Definitions

from em_assets.datasets.registry import DATASETS
from em_assets.definitions import defs
from em_assets.settings import ASSET_GROUP


def test_definitions_are_loadable():
    Definitions.validate_loadable(defs)


def test_both_module_names_expose_the_same_definitions():
    assert importlib.import_module("em_assets").defs is defs


def test_pyproject_and_workspace_point_at_the_same_module(pytestconfig):
    root = pytestconfig.rootpath
    tool = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["dagster"]
    workspace = yaml.safe_load((root / "workspace.yaml").read_text())
    module = workspace["load_from"][0]["python_module"]
    assert tool["module_name"] == module["module_name"] == "em_assets.definitions"
    assert tool["code_location_name"] == module["location_name"]


def test_every_asset_is_described_grouped_kinded_and_versioned():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description, key
        assert node.group_name == ASSET_GROUP, key
        assert node.kinds, key
        assert node.code_version, key


def test_epfl_catalog_metadata_is_there_before_any_run():
    spec = defs.resolve_asset_graph().get(AssetKey("epfl_hippocampus"))
    assert {"source", "license", "citation", "documented_voxel_size"} <= spec.metadata.keys()


def test_dagster_cli_validates_the_location():
    completed = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "em_assets.definitions"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]


BLOCKING_CHECKS = {
    "epfl_files_intact",
    "empiar_files_intact",
    "idr_files_intact",
    "hemibrain_crop_intact",
    "hemibrain_labels_aligned",
    "openorganelle_crop_intact",
    "openorganelle_labels_aligned",
}
IMAGES_CHECKS = {f"{spec.name}_images_intact" for spec in DATASETS}
CHECKS_IN_THE_ASSETS_STEP = {
    "empiar_listing_complete",
    "empiar_calibration_matches_api",
    "empiar_section_thickness_matches_dm3",
    "empiar_voxel_size_documented",
    "idr_size_matches_tiff",
    "idr_pixel_size_matches_tiff",
    "idr_voxel_size_documented",
    "hemibrain_voxel_size_documented",
    "hemibrain_crop_mostly_background",
    "openorganelle_voxel_size_documented",
    "openorganelle_crop_mostly_background",
}


def test_checks_that_block_or_are_deep_verified_have_steps_of_their_own_the_rest_are_the_assets():
    """A check with a step of its own costs every run a step's worth of event-log writes, so
    the WARN checks, which only look at what the asset just described, are yielded by the
    asset's step; blocking checks keep their own steps (they gate what runs downstream) and
    so do the checks `deep_verify` runs without materializing anything."""
    own = {spec.name: spec.blocking for c in defs.asset_checks or [] for spec in c.check_specs}
    in_asset = {spec.name: spec.blocking for a in defs.assets or [] for spec in a.check_specs}
    assert own == {name: name in BLOCKING_CHECKS for name in BLOCKING_CHECKS | IMAGES_CHECKS}
    assert in_asset == dict.fromkeys(CHECKS_IN_THE_ASSETS_STEP, False)


def test_no_check_loads_its_asset_as_an_input():
    """Checks read the stored manifest themselves: a loaded input is two more events (and an
    IO manager log line) per check on every run."""
    for check in defs.asset_checks or []:
        loaded = [i.name for i in check.node_def.input_defs if not i.dagster_type.is_nothing]
        assert loaded == [], (check.node_def.name, loaded)
