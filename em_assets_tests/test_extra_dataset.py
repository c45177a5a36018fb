"""A sixth dataset is one module: registered beside the registry's, it materializes, appears
in the consolidated report and is watched by the source check, with no other edit.

The definitions are built from a trimmed registry (EPFL, the file-set kind's real module,
plus the extra one) through `build_definitions`, the documented hook, so the test stays fast;
the five real datasets go through the same code in test_consolidated_report and test_refresh.
"""

from __future__ import annotations

import json

import numpy as np
from dagster import DagsterInstance, build_sensor_context, materialize

from em_assets.datasets import epfl_hippocampus
from em_assets.definitions import build_definitions
from em_assets.manifest.model import Manifest
from em_assets.resources import default_resources
from em_assets_tests.extra import mito_sample
from em_assets_tests.replicas.epfl import tiff_stack

DIRECTORY = "/extra/mito-sample/"
SPECS = [epfl_hippocampus.SPEC, mito_sample.SPEC]


def serve(http, seed: int) -> bytes:
    volume = np.random.default_rng(seed).integers(0, 256, size=(5, 24, 32), dtype=np.uint8)
    body = tiff_stack(volume)
    http.put(DIRECTORY + "sample.tif", body, content_type="image/tiff")
    return body


def sensor_tick(defs, instance):
    with build_sensor_context(
        instance=instance, resources=default_resources(SPECS), definitions=defs
    ) as context:
        return defs.resolve_sensor_def("source_check").evaluate_tick(context)


def observed_versions(tick) -> dict[str, str]:
    return {
        event.asset_key.to_user_string(): event.metadata["source_version"].value
        for event in tick.asset_events
    }


def test_an_extra_dataset_module_materializes_is_reported_and_watched(
    epfl_replica, storage_root, monkeypatch
):
    http, _ = epfl_replica
    body = serve(http, seed=1)
    monkeypatch.setenv(mito_sample.URL_VARIABLE, http.url(DIRECTORY))
    defs = build_definitions(SPECS)
    instance = DagsterInstance.ephemeral()

    # Materializes, with its check, beside the others and the report.
    result = materialize(
        [*defs.assets, *defs.asset_checks], resources=default_resources(SPECS), instance=instance
    )
    assert result.success
    manifest = Manifest.model_validate_json((storage_root / "mito_sample.json").read_text())
    assert manifest.shape == [5, 24, 32] and manifest.voxel_size_nm == [4.0, 4.0, 4.0]
    assert (storage_root / "mito_sample" / "sample.tif").read_bytes() == body
    assert manifest.images, "the flow converted it to OME-Zarr like the others"
    checks = result.get_asset_check_evaluations()
    assert {c.check_name: c.passed for c in checks}["mito_sample_intact"] is True

    # Appears in the consolidated report: its value, its table and its text.
    report = json.loads((storage_root / "consolidated_report.json").read_text())
    assert "mito_sample" in json.dumps(report)
    csv = (storage_root / "consolidated_report.csv").read_text()
    assert [line.split(",")[0] for line in csv.splitlines()[1:]] == [
        "epfl_hippocampus", "mito_sample",
    ]  # fmt: skip
    assert "| mito_sample |" in (storage_root / "consolidated_report.md").read_text()

    # Watched by the source check: its version recorded, unchanged until its file changes.
    first = sensor_tick(defs, instance)
    assert observed_versions(first)["mito_sample"] == manifest.source_version
    assert first.run_requests == []
    serve(http, seed=2)
    changed = sensor_tick(defs, instance)
    assert observed_versions(changed)["mito_sample"] != manifest.source_version
    (request,) = changed.run_requests
    assert sorted(key.to_user_string() for key in request.asset_selection) == [
        "consolidated_report", "mito_sample",
    ]  # fmt: skip
    assert f"the {len(SPECS)} datasets" in defs.resolve_schedule_def("weekly_refresh").description
