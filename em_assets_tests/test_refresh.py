"""Refreshes against the replicas: unchanged sources move nothing, changed ones only themselves."""

from __future__ import annotations

import pytest
from dagster import (
    DagsterInstance,
    RunRequest,
    build_schedule_context,
    build_sensor_context,
    materialize,
)

from em_assets.definitions import ASSETS, CHECKS, defs
from em_assets.refresh.run_config import refresh_run_config
from em_assets.refresh.schedule import build_refresh_schedule
from em_assets.resources import default_resources
from em_assets.settings import ConfigurationError
from em_assets.storage.root import StorageRoot
from em_assets_tests.conftest import SMALL_CROPS
from em_assets_tests.replicas.ebi import IDR_DIRECTORY, IDR_XZ
from em_assets_tests.replicas.empiar import DATA_DIRECTORY, SLICES
from em_assets_tests.replicas.epfl import EPFL_DIRECTORY, epfl_stacks

DATASETS = ["epfl_hippocampus", "flyem_hemibrain", "empiar_11759", "idr_0086", "openorganelle_jrc"]
SIX = [*DATASETS, "consolidated_report"]
DATA_VERSION_TAG = "dagster/data_version"


def refresh(storage_root, first: bool = False):
    """A full run, as the schedule launches it (after the first, with the stored config)."""
    config = (
        SMALL_CROPS if first else refresh_run_config(StorageRoot(root=str(storage_root)), DATASETS)
    )
    return materialize(
        [*ASSETS, *CHECKS],
        resources=default_resources(),
        instance=DagsterInstance.ephemeral(),
        run_config=config,
    )


def outcome(result) -> dict[str, tuple[str, bool | None]]:
    """Per asset: its data version, and whether it said it was unchanged."""
    found = {}
    for name in SIX:
        event = result.asset_materializations_for_node(name)[0]
        unchanged = event.metadata.get("unchanged")
        found[name] = (event.tags[DATA_VERSION_TAG], unchanged.value if unchanged else None)
    return found


def data_file_bytes(server) -> dict[str, int]:
    """Payload served for data files (documents such as JSON and listings excluded)."""
    return {
        path: count
        for path, count in server.state.payload_by_path.items()
        if path.endswith((".tif", ".dm3")) and count
    }


def chunk_requests(server) -> list[str]:
    return [path for _, path, _ in server.state.requests if not path.endswith("/info")]


def test_unchanged_refresh_moves_no_payload_and_keeps_every_data_version(all_sources):
    http, precomputed, root = all_sources["http"], all_sources["precomputed"], all_sources["root"]
    first = outcome(refresh(root, first=True))
    http.reset_counters()
    precomputed.reset_counters()
    run = refresh(root)
    second = outcome(run)
    assert data_file_bytes(http) == {}
    requests = chunk_requests(precomputed)
    assert [r for r in requests if "/v1.2/" not in r] == []  # no EM chunk, no label copied
    # Only the blocking alignment check reads the source label, at three voxels by design
    # (each a shard index, a minishard index and a chunk).
    assert len([r for r in requests if "/v1.2/segmentation/" in r]) <= 9
    checks = run.get_asset_check_evaluations()
    # Every check ran once: those with steps of their own and those the assets' steps yield
    # (on a kept file set or crop as on a fresh one).
    declared = [s.name for d in [*CHECKS, *ASSETS] for s in d.check_specs]
    assert sorted(e.check_name for e in checks) == sorted(declared) and len(declared) == 23
    images = [e for e in checks if e.check_name.endswith("_images_intact")]
    intact = [e for e in checks if e.check_name.endswith("_intact") and e not in images]
    assert len(intact) == len(images) == len(DATASETS)
    assert all(e.passed for e in intact + images)
    # Every stored file and crop was trusted by its fingerprint: none was read again.
    assert {e.check_name: e.metadata["entries_read_in_full"].value for e in intact} == {
        e.check_name: 0 for e in intact
    }
    assert {name: v for name, (v, _) in second.items()} == {
        name: v for name, (v, _) in first.items()
    }
    assert all(second[name][1] is True for name in DATASETS)
    manifest = StorageRoot(root=str(root)).stored_manifest("flyem_hemibrain")
    assert manifest.crop.size_voxels == [64, 64, 64]  # the stored config was repeated


def test_changed_file_refetches_only_that_dataset_and_moves_the_report(all_sources):
    http, root = all_sources["http"], all_sources["root"]
    first = outcome(refresh(root, first=True))
    changed = epfl_stacks(seed=99)["training.tif"]
    http.put(EPFL_DIRECTORY + "training.tif", changed, content_type="image/tiff")
    http.reset_counters()
    second = outcome(refresh(root))
    assert data_file_bytes(http) == {EPFL_DIRECTORY + "training.tif": len(changed)}
    assert (root / "epfl_hippocampus" / "training.tif").read_bytes() == changed
    for name in SIX:
        moved = name in ("epfl_hippocampus", "consolidated_report")
        assert (second[name][0] != first[name][0]) is moved, name
    assert second["epfl_hippocampus"][1] is False


def test_deleted_and_corrupted_files_come_back(all_sources):
    http, root = all_sources["http"], all_sources["root"]
    first = outcome(refresh(root, first=True))
    (root / "idr_0086" / IDR_XZ).unlink()
    slice_path = root / "empiar_11759" / SLICES[2]
    damaged = bytearray(slice_path.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01
    slice_path.write_bytes(bytes(damaged))
    http.reset_counters()
    second = outcome(refresh(root))
    assert set(data_file_bytes(http)) == {IDR_DIRECTORY + IDR_XZ, DATA_DIRECTORY + SLICES[2]}
    assert (root / "idr_0086" / IDR_XZ).exists()
    assert slice_path.read_bytes() != bytes(damaged)
    # The repaired bytes are the recorded ones, so the data versions do not move.
    assert {n: v for n, (v, _) in second.items()} == {n: v for n, (v, _) in first.items()}


def test_corrupted_crop_chunk_is_detected_and_copied_again(all_sources):
    precomputed, root = all_sources["precomputed"], all_sources["root"]
    refresh(root, first=True)
    manifest = StorageRoot(root=str(root)).stored_manifest("flyem_hemibrain")
    chunk = next(
        p
        for p in (root / manifest.array_path / "s0").rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )
    chunk.write_bytes(b"\x00" * chunk.stat().st_size)
    precomputed.reset_counters()
    second = outcome(refresh(root))
    assert chunk_requests(precomputed)  # the crop was read from the source again
    assert second["flyem_hemibrain"][1] is True  # same voxels as recorded: same data version
    repaired = StorageRoot(root=str(root)).stored_manifest("flyem_hemibrain")
    assert repaired.files[0].sha256 == manifest.files[0].sha256


def test_schedule_requests_the_six_assets_with_the_stored_config(all_sources):
    refresh(all_sources["root"], first=True)
    schedule = defs.resolve_schedule_def("weekly_refresh")
    assert schedule.default_status.value == "STOPPED"
    context = build_schedule_context(
        resources={"storage": StorageRoot(root=str(all_sources["root"]))}
    )
    request = schedule.evaluate_tick(context).run_requests[0]
    assert isinstance(request, RunRequest)
    assert request.run_config["ops"]["flyem_hemibrain"]["config"]["crop_size"] == 64
    assert request.run_config["ops"]["openorganelle_jrc"]["config"]["crop_size"] == 64


def test_schedule_targets_the_six_assets():
    schedule = defs.resolve_schedule_def("weekly_refresh")
    job = defs.resolve_job_def(schedule.job_name)
    assert sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys) == sorted(SIX)


def test_schedule_cron_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("EM_REFRESH_CRON", "30 2 * * *")
    assert build_refresh_schedule(DATASETS).cron_schedule == "30 2 * * *"
    monkeypatch.setenv("EM_REFRESH_CRON", "every monday")
    with pytest.raises(ConfigurationError, match="EM_REFRESH_CRON='every monday'"):
        build_refresh_schedule(DATASETS)


def test_source_check_reports_versions_and_launches_only_what_changed(all_sources):
    http, root = all_sources["http"], all_sources["root"]
    resources = default_resources()

    def check():
        with build_sensor_context(
            instance=DagsterInstance.ephemeral(), resources=resources, definitions=defs
        ) as context:
            result = defs.resolve_sensor_def("source_check").evaluate_tick(context)
        versions = {
            e.asset_key.to_user_string(): e.metadata["source_version"].value
            for e in result.asset_events
        }
        return versions, result.run_requests

    before, requests = check()
    assert sorted(before) == sorted(DATASETS)
    assert len(requests) == 1  # nothing stored yet: everything is due
    refresh(root, first=True)
    again, requests = check()
    assert again == before and requests == []
    http.put(EPFL_DIRECTORY + "training.tif", epfl_stacks(seed=7)["training.tif"], "image/tiff")
    http.reset_counters()
    after, requests = check()
    assert data_file_bytes(http) == {}  # the check reads metadata only
    assert [n for n in DATASETS if after[n] != before[n]] == ["epfl_hippocampus"]
    assert sorted(k.to_user_string() for k in requests[0].asset_selection) == [
        "consolidated_report", "epfl_hippocampus",
    ]  # fmt: skip
