"""The code location loads the way Dagster loads it, with every asset described and wired."""

import importlib
import subprocess
import sys
import tomllib

import yaml
from dagster import AssetKey, Definitions

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
