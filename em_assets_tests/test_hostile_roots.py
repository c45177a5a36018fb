"""A root that is shared, damaged or full: links, wrong-type entries, broken manifests,
orphans and a disk that runs out. Nothing is written outside the root, nothing half-made
is left at a final path, and every refusal names the thing and the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from dagster import DagsterInstance
from upath import UPath

from em_assets.storage.staging import SizeMismatchError, Staging
from em_assets_tests.helpers import step_error
from em_assets_tests.replicas.epfl import EPFL_DIRECTORY
from em_assets_tests.replicas.http_server import Fault
from em_assets_tests.test_epfl_hippocampus import run as run_epfl

DEFAULT = ["training.tif", "training_groundtruth.tif"]
KEPT = sorted([*DEFAULT, "training.ome.zarr"])
"""What a default run leaves under the dataset's directory: the stacks and their image."""


def run(files=None, instance=None):
    """EPFL materialized in process, as its own tests do; failures are returned, not raised."""
    return run_epfl(instance, files, raise_on_error=False)


def logged(instance: DagsterInstance, result, containing: str) -> list[str]:
    """The run's log lines (as the UI shows them) that contain `containing`."""
    lines = [entry.user_message for entry in instance.all_logs(result.run_id)]
    return [line for line in lines if containing in line]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside the storage root that must never be written to."""
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "precious.txt").write_bytes(b"not yours")
    return directory


def test_a_link_at_the_final_path_is_replaced_not_written_through(
    epfl_replica, storage_root, outside
):
    _, served = epfl_replica
    directory = storage_root / "epfl_hippocampus"
    directory.mkdir(parents=True)
    os.symlink(outside / "precious.txt", directory / "training.tif")
    assert run().success
    assert not (directory / "training.tif").is_symlink()
    assert (directory / "training.tif").read_bytes() == served["training.tif"]
    assert (outside / "precious.txt").read_bytes() == b"not yours"


def test_links_planted_at_staging_names_are_never_followed(epfl_replica, storage_root, outside):
    """The old fixed staging name, and a resume record naming a link: both ignored, the
    planted links removed at the end (not their targets)."""
    directory = storage_root / "epfl_hippocampus"
    directory.mkdir(parents=True)
    os.symlink(outside / "precious.txt", directory / "training.tif.part")
    os.symlink(outside / "precious.txt", directory / ".training.tif.abc.part")
    record = {"part": ".training.tif.abc.part", "source": {"url": "x"}}
    (directory / ".training.tif.resume.json").write_text(json.dumps(record))
    assert run().success
    assert (outside / "precious.txt").read_bytes() == b"not yours"
    assert sorted(p.name for p in directory.iterdir()) == KEPT


def test_a_dataset_directory_linked_outside_the_root_is_refused(
    epfl_replica, storage_root, outside
):
    storage_root.mkdir(parents=True)
    os.symlink(outside, storage_root / "epfl_hippocampus")
    result = run()
    assert not result.success
    error = step_error(result)
    assert "leads outside the storage root" in error and "remove that link" in error
    assert sorted(p.name for p in outside.iterdir()) == ["precious.txt"]


def test_a_directory_where_a_file_belongs_is_named_and_left_alone(epfl_replica, storage_root):
    squatter = storage_root / "epfl_hippocampus" / "training.tif"
    squatter.mkdir(parents=True)
    (squatter / "notes.txt").write_text("mine")
    result = run()
    assert not result.success
    error = step_error(result)
    assert f"{squatter} is a directory" in error and "Move it out" in error
    assert (squatter / "notes.txt").read_text() == "mine"
    assert not [p for p in squatter.parent.iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize("damage", ["truncated", "empty object"])
def test_an_unreadable_manifest_is_named_and_the_asset_rebuilt(epfl_replica, storage_root, damage):
    server, _ = epfl_replica
    assert run().success
    manifest = storage_root / "epfl_hippocampus.json"
    text = manifest.read_text()
    manifest.write_text(text[: len(text) // 2] if damage == "truncated" else "{}")
    server.reset_counters()
    instance = DagsterInstance.ephemeral()
    result = run(instance=instance)
    assert result.success
    warnings = logged(instance, result, "rebuilding epfl_hippocampus")
    assert warnings and str(manifest) in warnings[0]
    json.loads(manifest.read_text())  # a whole manifest again


def test_files_dropped_from_the_config_are_removed_after_a_successful_run(
    epfl_replica, storage_root
):
    assert run(files=[*DEFAULT, "testing.tif"]).success
    directory = storage_root / "epfl_hippocampus"
    (directory / ".volumedata.tif.0123.part").write_bytes(b"stale partial")
    instance = DagsterInstance.ephemeral()
    result = run(instance=instance)
    assert result.success
    assert sorted(p.name for p in directory.iterdir()) == KEPT
    removed = logged(instance, result, "not part of the stored manifest")
    assert any("testing.tif" in m for m in removed)
    assert any(".volumedata.tif.0123.part" in m for m in removed)


def test_a_failed_run_removes_nothing(epfl_replica, storage_root):
    server, _ = epfl_replica
    assert run(files=[*DEFAULT, "testing.tif"]).success
    server.inject(Fault("status", status=404, method="HEAD"), EPFL_DIRECTORY + "training.tif")
    assert not run().success
    assert (storage_root / "epfl_hippocampus" / "testing.tif").exists()


def test_a_206_that_ends_before_the_total_is_resumed_not_accepted(epfl_replica, storage_root):
    server, served = epfl_replica
    path = EPFL_DIRECTORY + "training.tif"
    server.inject(Fault("cut", after_bytes=1000), path)
    server.inject(Fault("short_range", after_bytes=500), path)
    assert run(files=["training.tif"]).success
    stored = storage_root / "epfl_hippocampus" / "training.tif"
    assert stored.read_bytes() == served["training.tif"]
    ranges = [h.get("Range") for h in server.requests_for(path)]
    assert ranges[-2:] == ["bytes=1000-", "bytes=1500-"]


def test_staging_refuses_bytes_that_did_not_all_reach_storage(tmp_path: Path):
    destination = UPath(tmp_path / "out.bin")
    destination.write_bytes(b"earlier good copy")
    staging = Staging(destination)
    handle = staging.open()
    handle.write(b"0123456789")
    handle.flush()
    os.truncate(staging.path.path, 4)  # storage kept less than was written
    with pytest.raises(SizeMismatchError, match="4 bytes stored, 10 written"):
        staging.commit(handle, 10)
    assert destination.read_bytes() == b"earlier good copy"
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["out.bin"]


@pytest.fixture
def small_disk(tmp_path: Path, monkeypatch):
    """A 2 MiB tmpfs as the storage root, where this machine lets a test mount one."""
    mount = tmp_path / f"small-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()})")
    monkeypatch.setenv("EM_ASSETS_ROOT", str(mount / "em_data"))
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_named_before_the_first_byte(epfl_replica, small_disk):
    server, _ = epfl_replica
    server.put(EPFL_DIRECTORY + "volumedata.tif", b"II*\x00" + b"\x00" * (30 * 1024 * 1024))
    server.reset_counters()
    result = run(files=["volumedata.tif"])
    assert not result.success
    error = step_error(result)
    assert "epfl_hippocampus/volumedata.tif" in error
    assert "bytes still to come but only" in error and "bytes free" in error
    assert server.counters()["payload_bytes"] == 0
    assert not (small_disk / "em_data" / "epfl_hippocampus" / "volumedata.tif").exists()


def test_a_disk_that_fills_mid_body_is_named_and_cleaned(epfl_replica, small_disk):
    """No Content-Length, so nothing to check in advance: the ENOSPC is restated."""
    server, _ = epfl_replica
    server.put(
        EPFL_DIRECTORY + "volumedata.tif",
        b"II*\x00" + os.urandom(30 * 1024 * 1024),
        send_length=False,
    )
    result = run(files=["volumedata.tif"])
    assert not result.success
    error = step_error(result)
    assert "the disk filled up after" in error and "volumedata.tif" in error
    directory = small_disk / "em_data" / "epfl_hippocampus"
    assert not directory.exists() or list(directory.iterdir()) == []  # no partial, no record


def test_unreachable_sources_fail_once_each_in_words_a_person_can_act_on(storage_root, tmp_path):
    """Nothing listens on the sources' ports: one readable error per dataset, no noise."""
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing answers
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "EM_EPFL_URL": f"{dead}/epfl/",
        "AWS_ENDPOINT_URL": dead,
    }
    (tmp_path / "home").mkdir()
    config = {"resources": {"http": {"config": {"max_attempts": 2, "base_delay_s": 0.01}}}}
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "em_assets",
         "--select", "epfl_hippocampus,openorganelle_jrc", "--config-json", json.dumps(config)],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode != 0
    epfl = [line for line in output.splitlines() if "SourceUnreachableError: HEAD" in line]
    s3 = [line for line in output.splitlines() if "the OpenOrganelle volume: a connection" in line]
    assert epfl and s3
    assert f"could not connect to 127.0.0.1:{port}" in epfl[0]
    assert "EM_EPFL_URL" in epfl[0] and "network connection and proxy" in epfl[0]
    assert f"via the S3 endpoint {dead} (AWS_ENDPOINT_URL)" in s3[0]
    assert "EM_OPENORGANELLE_URL" in s3[0]
    # Each failure is stated by its step (Dagster's run-failure line repeats the first one).
    assert len(epfl) + len(s3) <= 3
    assert "Exception ignored" not in output and "Unclosed client session" not in output
    for library in ("requests.exceptions", "urllib3.exceptions", "aiohttp.client_exceptions"):
        assert library not in output  # no chained library tracebacks
    assert len(output.splitlines()) < 200  # was ~340 for these two datasets
