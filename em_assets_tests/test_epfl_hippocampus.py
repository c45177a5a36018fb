"""epfl_hippocampus end to end against the replica of the EPFL server, in process and by CLI."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import tifffile
from dagster import AssetKey, AssetSelection, DagsterInstance, materialize

from em_assets.datasets.epfl_hippocampus import epfl_files_intact, epfl_hippocampus
from em_assets.manifest.model import Manifest
from em_assets.resources import default_resources
from em_assets_tests.helpers import dagster_home, materialization_metadata, run_cli, step_error
from em_assets_tests.replicas.epfl import EPFL_DIRECTORY, STACK_SHAPE, tiff_stack
from em_assets_tests.replicas.http_server import Fault

MANIFEST_KEYS = {
    "dataset", "title", "technique", "organism", "sample", "voxel_size_nm", "voxel_size_source",
    "isotropic", "axes", "shape", "dtype", "file_count", "total_bytes", "files", "source_urls",
    "license", "citation", "retrieved_at", "source_version",
}  # fmt: skip


def run(instance=None, files=None, raise_on_error=True):
    run_config = {"ops": {"epfl_hippocampus": {"config": {"files": files}}}} if files else None
    return materialize(
        [epfl_hippocampus, epfl_files_intact],
        resources=default_resources(),
        instance=instance or DagsterInstance.ephemeral(),
        run_config=run_config,
        raise_on_error=raise_on_error,
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_materializes_files_manifest_metadata_and_check(epfl_replica, storage_root):
    _, served = epfl_replica
    result = run()
    assert result.success

    manifest = json.loads((storage_root / "epfl_hippocampus.json").read_text())
    assert manifest.keys() >= MANIFEST_KEYS
    assert manifest["voxel_size_nm"] == [5.0, 5.0, 5.0]
    assert "epfl.ch" in manifest["voxel_size_source"]
    assert manifest["technique"] == "FIB-SEM" and manifest["organism"] == "Mus musculus"
    assert manifest["shape"] == list(STACK_SHAPE) and manifest["dtype"] == "uint8"
    assert manifest["file_count"] == 2
    for entry, name in zip(
        manifest["files"], ["training.tif", "training_groundtruth.tif"], strict=True
    ):
        stored = (storage_root / "epfl_hippocampus" / name).read_bytes()
        assert stored == served[name]
        assert entry["sha256"] == sha256(served[name]) and entry["bytes"] == len(served[name])
    assert manifest["total_bytes"] == sum(
        len(served[n]) for n in ["training.tif", "training_groundtruth.tif"]
    )

    metadata = result.asset_materializations_for_node("epfl_hippocampus")[0].metadata
    assert metadata["voxel_size"].value.startswith("5 × 5 × 5 nm")
    assert metadata["file_count"].value == 2
    assert [r.data["path"] for r in metadata["files"].value.records] == [
        "epfl_hippocampus/training.tif", "epfl_hippocampus/training_groundtruth.tif",
    ]  # fmt: skip
    assert metadata["payload_bytes"].value == manifest["total_bytes"]
    check = result.get_asset_check_evaluations()[0]
    assert check.check_name == "epfl_files_intact" and check.passed


def test_unchanged_rerun_moves_zero_payload(epfl_replica, storage_root):
    server, _ = epfl_replica
    run()
    first = json.loads((storage_root / "epfl_hippocampus.json").read_text())
    server.reset_counters()
    result = run()
    assert server.state.payload_bytes == 0
    again = json.loads((storage_root / "epfl_hippocampus.json").read_text())
    assert again["files"] == first["files"] and again["source_version"] == first["source_version"]
    assert (
        result.asset_materializations_for_node("epfl_hippocampus")[0]
        .metadata["payload_bytes"]
        .value
        == 0
    )


def test_survives_cut_bodies_and_a_503_with_retry_after(epfl_replica, storage_root):
    server, served = epfl_replica
    server.inject(Fault("status", status=503, retry_after="1", method="HEAD"))
    for name in ("training.tif", "training_groundtruth.tif"):
        server.inject(Fault("cut", after_bytes=len(served[name]) // 3), EPFL_DIRECTORY + name)
    assert run().success
    manifest = Manifest.model_validate_json((storage_root / "epfl_hippocampus.json").read_text())
    assert [f.sha256 for f in manifest.files] == [
        sha256(served["training.tif"]), sha256(served["training_groundtruth.tif"]),
    ]  # fmt: skip
    assert any("Range" in h for h in server.requests_for(EPFL_DIRECTORY + "training.tif"))


def test_error_page_instead_of_tiff_fails_and_keeps_nothing(epfl_replica, storage_root):
    server, _ = epfl_replica
    server.inject(Fault("body", body=b"<html>quota exceeded</html>", content_type="image/tiff"),
                  EPFL_DIRECTORY + "training.tif")  # fmt: skip
    result = run(raise_on_error=False)
    assert not result.success
    assert "not TIFF" in step_error(result)
    assert not (storage_root / "epfl_hippocampus" / "training.tif").exists()
    assert not (storage_root / "epfl_hippocampus.json").exists()


def test_failed_refresh_leaves_the_earlier_good_copy(epfl_replica, storage_root):
    server, served = epfl_replica
    run()
    server.put(EPFL_DIRECTORY + "training.tif", b"II*\x00changed", content_type="image/tiff")
    server.inject(Fault("status", status=404), EPFL_DIRECTORY + "training.tif")
    assert not run(raise_on_error=False).success
    assert (storage_root / "epfl_hippocampus" / "training.tif").read_bytes() == served[
        "training.tif"
    ]


def test_other_files_are_selectable(epfl_replica, storage_root):
    _, served = epfl_replica
    run(files=["volumedata.tif"])
    stored = storage_root / "epfl_hippocampus" / "volumedata.tif"
    assert stored.read_bytes() == served["volumedata.tif"]


def test_unknown_file_name_lists_the_valid_ones_and_fetches_nothing(epfl_replica, storage_root):
    server, _ = epfl_replica
    result = run(files=["training.tif", "train.tif"], raise_on_error=False)
    assert not result.success
    message = step_error(result)
    assert "unknown EPFL file(s) ['train.tif']" in message
    assert "testing_groundtruth.tif" in message and "volumedata.tif" in message
    assert server.state.requests == []


def test_malformed_root_is_named_before_any_transfer(epfl_replica, monkeypatch):
    server, _ = epfl_replica
    monkeypatch.setenv("EM_ASSETS_ROOT", "s3:/missing-slashes")
    result = run(raise_on_error=False)
    assert not result.success
    assert "EM_ASSETS_ROOT='s3:/missing-slashes'" in step_error(result)
    assert server.state.requests == []


def test_malformed_source_url_names_the_variable(epfl_replica, storage_root, monkeypatch):
    monkeypatch.setenv("EM_EPFL_URL", "documents.epfl.ch/no-scheme")
    result = run(raise_on_error=False)
    assert "EM_EPFL_URL='documents.epfl.ch/no-scheme' is not an absolute http(s) URL" in step_error(
        result
    )


def test_check_fails_on_a_corrupted_stored_file(epfl_replica, storage_root):
    run()
    stored = storage_root / "epfl_hippocampus" / "training_groundtruth.tif"
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0xFF
    stored.write_bytes(bytes(data))
    result = materialize(
        [epfl_hippocampus, epfl_files_intact],
        selection=AssetSelection.checks(epfl_files_intact),
        resources=default_resources(),
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    evaluation = result.get_asset_check_evaluations()[0]
    assert not evaluation.passed
    assert "training_groundtruth.tif: sha256 differs" in evaluation.metadata["problems"].value


def test_check_blocks_a_stack_that_is_not_uint8(epfl_replica, storage_root):
    server, _ = epfl_replica
    wide = tiff_stack(np.zeros(STACK_SHAPE, dtype=np.uint16))
    server.put(EPFL_DIRECTORY + "training.tif", wide, content_type="image/tiff")
    result = run(files=["training.tif"], raise_on_error=False)
    evaluation = result.get_asset_check_evaluations()[0]
    assert not evaluation.passed
    assert "dtype uint16, expected uint8" in evaluation.metadata["problems"].value
    assert tifffile.imread(storage_root / "epfl_hippocampus" / "training.tif").dtype == np.uint16


def test_cli_materializes_and_records_metadata_in_the_instance(
    epfl_replica, storage_root, tmp_path
):
    """Both module forms of the README's command, against one instance: the first run with
    `-m em_assets` downloads, the second with `-m em_assets.definitions` finds the verified
    copy and moves no bytes; each records its materialization. (One run per form instead of
    a run and a re-run per form: the same paths, half the CLI start-ups.)"""
    server, served = epfl_replica
    completed = run_cli(
        ["dagster", "asset", "materialize", "-m", "em_assets", "--select", "epfl_hippocampus"],
        tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Executing steps in process" in completed.stderr  # one process unless asked
    stored = storage_root / "epfl_hippocampus" / "training.tif"
    assert sha256(stored.read_bytes()) == sha256(served["training.tif"])
    first = materialization_metadata(tmp_path, "epfl_hippocampus")
    assert first["voxel_size"].value.startswith("5 × 5 × 5 nm")
    assert len(first["files"].value.records) == 2

    server.reset_counters()
    again = run_cli(
        ["dagster", "asset", "materialize", "-m", "em_assets.definitions", "--select",
         "epfl_hippocampus"],
        tmp_path,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert server.state.payload_bytes == 0
    with DagsterInstance.from_config(str(dagster_home(tmp_path))) as instance:
        recorded = instance.fetch_materializations(AssetKey("epfl_hippocampus"), limit=5)
    assert len(recorded.records) == 2  # each form recorded its run in the instance
    second = materialization_metadata(tmp_path, "epfl_hippocampus")
    assert second["voxel_size"].value == first["voxel_size"].value
    assert len(second["files"].value.records) == 2
