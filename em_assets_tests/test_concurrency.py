"""Runs that overlap, die or meet a hostile root: never a wrong file, never a lost good copy.

Every run here is a real `dagster asset materialize` process against the replicas; the
overlaps are real (two processes on one root) and the deaths are SIGKILL.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from upath import UPath

from em_assets_tests.helpers import dagster_home
from em_assets_tests.replicas.epfl import EPFL_DIRECTORY, tiff_stack
from em_assets_tests.replicas.http_server import Fault

BIG = "volumedata.tif"
RATE = 128 * 1024
"""Bytes per second the replica sends BIG at: slow enough to overlap and kill runs mid-body."""


def big_stack() -> bytes:
    import numpy as np

    rng = np.random.default_rng(11)
    return tiff_stack(rng.integers(0, 256, size=(12, 256, 512), dtype=np.uint8))  # 1.5 MB, 12 s


def start_materialize(base: Path, files: list[str], extra_env: dict | None = None):
    """A `dagster asset materialize` of EPFL in its own process group (to SIGKILL it whole)."""
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home(base)), **(extra_env or {})}
    config = {"ops": {"epfl_hippocampus": {"config": {"files": files}}}}
    return subprocess.Popen(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "em_assets",
         "--select", "epfl_hippocampus", "--config-json", json.dumps(config)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip


class Output:
    """A process's output, collected line by line as it comes, so a test can wait for a line."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def saw(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def finish(self, timeout: float = 300) -> str:
        self.process.wait(timeout=timeout)
        self.thread.join(timeout=30)
        return "".join(self.lines)


def finish(process: subprocess.Popen, timeout: float = 300) -> str:
    output, _ = process.communicate(timeout=timeout)
    return output


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def held_epfl(epfl_replica):
    """BIG is served up to its first 64 KiB, then held until the test opens the gate."""
    server, _ = epfl_replica
    body = big_stack()
    server.put(EPFL_DIRECTORY + BIG, body, content_type="image/tiff")
    server.inject(Fault("hold", times=1, after_bytes=65536), EPFL_DIRECTORY + BIG)
    yield server, body
    server.state.gate.set()


def overlapping_runs(server, base: Path, env: dict | None = None) -> tuple[Output, Output]:
    """Two runs of EPFL: the second starts while the first is mid-body and holds the lease;
    the first's body continues once the second has had its say (waiting, or failing)."""
    first = Output(start_materialize(base / "a", [BIG]))
    wait_for(lambda: server.state.held == 1, timeout=180, what="the first body to start")
    second = Output(start_materialize(base / "b", [BIG], env))
    wait_for(
        lambda: second.saw("waiting up to") or second.process.poll() is not None,
        timeout=180,
        what="the second run to meet the lease",
    )
    server.state.gate.set()
    return first, second


@pytest.fixture
def big_epfl(epfl_replica):
    server, _ = epfl_replica
    body = big_stack()
    server.put(EPFL_DIRECTORY + BIG, body, content_type="image/tiff")
    server.inject(Fault("throttle", times=-1, rate=RATE), EPFL_DIRECTORY + BIG)
    return server, body


def wait_for(condition, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def staging_leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_two_runs_of_one_asset_on_one_local_root_take_turns(held_epfl, storage_root, tmp_path):
    server, body = held_epfl
    first, second = overlapping_runs(server, tmp_path)
    out_first, out_second = first.finish(), second.finish()

    assert first.process.returncode == 0, out_first[-3000:]
    assert second.process.returncode == 0, out_second[-3000:]
    run_id = out_first.split(" - RUN_START")[0].rsplit(" - ", 2)[-2]
    assert f"waiting up to 600 s for run {run_id}" in out_second  # names the holder
    stored = storage_root / "epfl_hippocampus" / BIG
    assert sha256(stored.read_bytes()) == sha256(body)
    # The second run waited, then found the first one's verified copy: one transfer in all.
    assert server.counters()["payload_by_path"][EPFL_DIRECTORY + BIG] == len(body)
    assert staging_leftovers(storage_root / "epfl_hippocampus") == []
    manifest = json.loads((storage_root / "epfl_hippocampus.json").read_text())
    assert [f["sha256"] for f in manifest["files"]] == [sha256(body)]


def test_two_runs_on_one_s3_root_take_turns(held_epfl, s3_replica, tmp_path, monkeypatch):
    server, body = held_epfl
    s3_replica.create_bucket("em-shared")
    monkeypatch.setenv("EM_ASSETS_ROOT", "s3://em-shared/corpus")
    first, second = overlapping_runs(server, tmp_path)
    out_first, out_second = first.finish(), second.finish()

    assert first.process.returncode == 0, out_first[-3000:]
    assert second.process.returncode == 0, out_second[-3000:]
    assert "waiting up to" in out_second
    root = UPath("s3://em-shared/corpus")
    assert sha256((root / "epfl_hippocampus" / BIG).read_bytes()) == sha256(body)
    assert server.counters()["payload_by_path"][EPFL_DIRECTORY + BIG] == len(body)
    assert not (root / ".leases" / "epfl_hippocampus.json").exists()  # released


def test_a_run_that_cannot_wait_names_the_holder_and_the_fix(held_epfl, storage_root, tmp_path):
    server, _ = held_epfl
    first, second = overlapping_runs(server, tmp_path, {"EM_LEASE_WAIT_S": "0"})
    out_second = second.finish()
    assert first.finish() and first.process.returncode == 0

    assert second.process.returncode != 0
    assert "epfl_hippocampus under" in out_second
    assert "is being written by run" in out_second
    assert "EM_LEASE_WAIT_S" in out_second


def staged_bytes(directory: Path) -> int:
    """Bytes in the staging files of `directory` (none yet: 0)."""
    if not directory.exists():
        return 0
    return sum(p.stat().st_size for p in directory.glob(".*.part") if p.is_file())


def test_killed_run_is_resumed_by_the_next_one(big_epfl, storage_root, tmp_path):
    server, body = big_epfl
    directory = storage_root / "epfl_hippocampus"
    run = start_materialize(tmp_path / "a", [BIG])
    # What the run wrote, not what the server sent: on a loaded machine the socket buffers
    # and the engine's queue hold a good part of a small body that never reaches the disk.
    wait_for(lambda: staged_bytes(directory) > len(body) * 0.4, what="40 % of the body staged")
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    assert not (directory / BIG).exists()  # nothing at the final path
    kept = staged_bytes(directory)
    assert kept > len(body) * 0.4
    wait_for(lambda: server.state.in_flight_bytes == 0, what="the killed body to end")
    server.reset_counters()

    rerun = start_materialize(tmp_path / "b", [BIG])
    output = finish(rerun)
    assert rerun.returncode == 0, output[-3000:]
    assert "resuming a partial copy from an earlier run" in output
    served = server.counters()["payload_by_path"][EPFL_DIRECTORY + BIG]
    assert served <= len(body) - kept, f"{served} of {len(body)} bytes served again ({kept} kept)"
    resumed = server.requests_for(EPFL_DIRECTORY + BIG)[-1]
    assert resumed["Range"].startswith("bytes=") and resumed["Range"] != "bytes=0-"
    assert "If-Range" in resumed
    assert sha256((directory / BIG).read_bytes()) == sha256(body)
    assert staging_leftovers(directory) == []


def test_a_partial_from_a_changed_source_is_discarded(big_epfl, storage_root, tmp_path):
    server, _ = big_epfl
    run = start_materialize(tmp_path / "a", [BIG])
    wait_for(lambda: server.state.in_flight_bytes > 100_000, what="part of the body")
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    changed = big_stack()[::-1]  # same length, other bytes: a new ETag
    server.put(EPFL_DIRECTORY + BIG, changed, content_type="image/tiff")
    server.state.faults.clear()
    server.reset_counters()

    rerun = start_materialize(tmp_path / "b", [BIG])
    output = finish(rerun)
    # The reversed stack is no TIFF, so the run fails, but it must not splice old bytes.
    assert "discarding a partial copy from an earlier run" in output
    assert server.requests_for(EPFL_DIRECTORY + BIG)[-1].get("Range") is None


@pytest.fixture(params=["s3", "gs"])
def lease_root(request: pytest.FixtureRequest) -> UPath:
    """A root in a fresh bucket of an object-store replica: moto S3, or the GCS emulator
    with the request preconditions real GCS honours (`replicas.gcs`)."""
    if request.param == "s3":
        request.getfixturevalue("s3_replica").create_bucket("em-leases")
    else:
        import gcsfs

        request.getfixturevalue("gcs_replica")
        gcsfs.GCSFileSystem().mkdir("em-leases")
    return UPath(f"{request.param}://em-leases/root")


def test_object_store_writes_only_under_their_preconditions(lease_root):
    """What every object-store lease rests on: create only if absent, replace and delete only
    the version read. Without these, two runs could both believe they hold a lease."""
    from em_assets.storage.lease import _ConditionalObject

    record = _ConditionalObject(lease_root / ".leases" / "x.json")
    first = record.create(b"run-a")
    assert first is not None
    assert record.create(b"run-b") is None  # exists: not overwritten
    second = record.replace(b"run-a renewed", first)
    assert second is not None and second != first
    assert record.replace(b"run-b", first) is None  # a stale version: refused
    assert record.delete(first) is False
    current = record.read()
    assert current is not None and current[0] == b"run-a renewed"
    assert record.delete(second) is True
    assert record.read() is None


def test_killed_lease_holder_on_an_object_store_is_taken_over(lease_root):
    """A lease whose holder was SIGKILLed is taken over once it is stale, not before."""
    script = (
        "import sys, time, logging\n"
        "from upath import UPath\n"
        "from em_assets.storage.lease import open_lease\n"
        "lease = open_lease(UPath(sys.argv[1]), 'x', 'run-dead', 0, 8, logging.getLogger())\n"
        "lease.acquire(); print('held', flush=True); time.sleep(600)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(lease_root)], stdout=subprocess.PIPE, text=True,
        env=os.environ.copy(),
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()

    import logging

    from em_assets.storage.lease import LeaseBusyError, open_lease

    impatient = open_lease(lease_root, "x", "run-new", 0, 8, logging.getLogger())
    with pytest.raises(LeaseBusyError, match="run-dead"):
        impatient.acquire()  # still fresh: the dead holder's lease stands for now
    started = time.monotonic()
    patient = open_lease(lease_root, "x", "run-new", 60, 8, logging.getLogger())
    patient.acquire()
    assert time.monotonic() - started < 40
    assert b"run-new" in (lease_root / ".leases" / "x.json").read_bytes()
    patient.release()
    assert not (lease_root / ".leases" / "x.json").exists()


def test_object_store_lease_admits_one_holder_among_racing_processes(lease_root):
    """Several processes race for one lease: the conditional create lets exactly one win."""
    script = (
        "import logging, sys\n"
        "from upath import UPath\n"
        "from em_assets.storage.lease import LeaseBusyError, open_lease\n"
        "lease = open_lease(UPath(sys.argv[1]), 'x', sys.argv[2], 0, 60, logging.getLogger())\n"
        "try:\n    lease.acquire(); print('won', flush=True)\n"
        "except LeaseBusyError:\n    print('lost', flush=True)\n"
    )
    racers = [
        subprocess.Popen([sys.executable, "-c", script, str(lease_root), f"run-{i}"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=os.environ.copy())
        for i in range(4)
    ]  # fmt: skip
    outputs = [r.communicate(timeout=300) for r in racers]
    results = [out.strip() for out, _ in outputs]
    assert sorted(results) == ["lost", "lost", "lost", "won"], [err[-2000:] for _, err in outputs]


def test_a_conditional_write_in_progress_elsewhere_means_not_now_not_a_failure(s3_replica):
    """S3 answers a conditional write of a key another conditional write is still busy with
    by 409 ConditionalRequestConflict, to be retried. Taking a lease must treat it as "not
    this poll" (busy, or won at a later poll), and a takeover's delete likewise; raising it
    would fail the run over a race it should simply wait out."""
    import logging

    from em_assets.storage.lease import LeaseBusyError, _ConditionalObject, open_lease

    s3_replica.create_bucket("em-conflicts")
    root, key = UPath("s3://em-conflicts/root"), "root/.leases/x.json"
    record = _ConditionalObject(root / ".leases" / "x.json")
    log = logging.getLogger("test")
    with s3_replica.conditional_write_in_progress("em-conflicts", key):
        assert record.create(b"run-a") is None
        with pytest.raises(LeaseBusyError):
            open_lease(root, "x", "run-a", 0, 60, log).acquire()
    version = record.create(b"run-a")
    assert version is not None
    with s3_replica.conditional_write_in_progress("em-conflicts", key):
        assert record.delete(version) is False
    assert record.delete(version) is True
    patient = open_lease(root, "x", "run-b", 30, 60, log)
    with s3_replica.conditional_write_in_progress("em-conflicts", key):
        waiting = threading.Thread(target=patient.acquire)
        waiting.start()
        time.sleep(2)  # polls answered 409 meanwhile
        assert waiting.is_alive()
    waiting.join(timeout=30)
    current = record.read()
    assert patient.version is not None and current is not None and b"run-b" in current[0]
    patient.release()


def test_a_lease_taken_over_under_its_holder_is_known_lost(lease_root):
    """If another run takes the lease (a holder stalled past the TTL), the holder's next
    heartbeat finds its version replaced and the holder may write nothing more."""
    import logging

    from em_assets.storage.lease import LeaseLostError, _ConditionalObject, open_lease

    lease = open_lease(lease_root, "x", "run-slow", 0, 2, logging.getLogger())
    lease.acquire()
    record = _ConditionalObject(lease_root / ".leases" / "x.json")
    current = record.read()
    assert current is not None
    assert record.delete(current[1]) and record.create(b'{"run_id": "run-fast"}')
    deadline = time.monotonic() + 20
    while lease.lost is None and time.monotonic() < deadline:
        time.sleep(0.1)  # the heartbeat runs every TTL / 4
    with pytest.raises(LeaseLostError, match="replaced by another run"):
        lease.assert_held()
    lease.release()
    assert b"run-fast" in (lease_root / ".leases" / "x.json").read_bytes()  # not deleted


@pytest.mark.parametrize(
    ("status", "message"),
    [(403, "Forbidden"), (400, "invalid request")],  # gcsfs raises OSError, then ValueError
)
def test_a_lease_is_kept_through_a_short_store_failure_and_lost_after_a_ttl(
    gcs_replica, status, message
):
    """The heartbeat renews through a store failing for less than a TTL; once no renewal has
    succeeded for a whole TTL the lease counts as lost (another run may have taken it over),
    whatever the store's client raised: a heartbeat must never die silently. The errors are
    ones gcsfs does not retry, so each beat sees its failure at once."""
    import logging

    import gcsfs

    from em_assets.storage.lease import LeaseLostError, open_lease

    gcsfs.GCSFileSystem().mkdir("em-leases")
    lease = open_lease(UPath("gs://em-leases/root"), "x", "run-a", 0, 4, logging.getLogger())
    lease.acquire()
    with gcs_replica.failing(status, message):
        time.sleep(1.5)  # about one beat (every TTL / 4) fails
        failed_at = lease.version
    wait_for(lambda: lease.version != failed_at, what="a renewal after the failure", timeout=10)
    lease.assert_held()
    with gcs_replica.failing(status, message):
        wait_for(lambda: lease.lost is not None, what="the lease counted lost", timeout=20)
    with pytest.raises(LeaseLostError, match="could not be renewed"):
        lease.assert_held()
    lease.release()
