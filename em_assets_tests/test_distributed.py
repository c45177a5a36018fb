"""The README's "Running at scale" recipe, for real: Redis, Postgres, two Celery workers.

The whole graph runs through `em_assets.deploy.definitions` (the Celery executor) against a
Postgres-backed instance set up by `python -m em_assets.deploy.instance`, with the root on
moto S3 and every source on its replica. Without the Debian packages the test skips, unless
EM_REQUIRE_DISTRIBUTED=1 (CI) turns their absence into a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest
from dagster import DagsterEventType, DagsterInstance, materialize
from upath import UPath

from em_assets.definitions import ASSETS
from em_assets.integrity.verify import file_problems
from em_assets.manifest.model import Manifest
from em_assets.report.findings import Report
from em_assets.resources import default_resources
from em_assets_tests.conftest import SMALL_CROPS
from em_assets_tests.replicas.http_server import Fault
from em_assets_tests.services import CeleryWorker, Postgres, Redis, missing_services
from em_assets_tests.test_scale import DATASETS, FAKE_KEY_ID, FAKE_SECRET

MISSING = missing_services()
if MISSING and os.environ.get("EM_REQUIRE_DISTRIBUTED") != "1":
    pytest.skip(
        f"needs {' and '.join(MISSING)}; set EM_REQUIRE_DISTRIBUTED=1 to fail instead",
        allow_module_level=True,
    )

BUCKET = "em-team-root"
WORKERS = ("w1", "w2")
PARTITION_KEYS = ("0", "1")


@pytest.fixture(scope="module")
def services(tmp_path_factory) -> Iterator[tuple[Redis, Postgres]]:
    assert not MISSING, f"EM_REQUIRE_DISTRIBUTED=1 but this machine lacks {MISSING}"
    redis, postgres = Redis(tmp_path_factory.mktemp("redis")), Postgres()
    try:
        yield redis.start(), postgres.start()
    finally:
        server_pid = postgres.stop()
        redis.stop()
    assert redis.process is None or redis.process.poll() is not None
    assert server_pid is None or exited(server_pid), "Postgres survived"


def exited(pid: int, within_s: float = 20) -> bool:
    """The process is gone, or a zombie: pg_ctl daemonizes the server, so its parent is
    whatever reaps orphans here, which may be slow to (or never) collect it."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def deployment(services, s3_replica, tmp_path, monkeypatch) -> dict[str, str]:
    """The operator's environment: instance in Postgres, broker in Redis, root on S3."""
    redis, postgres = services
    s3_replica.create_bucket(BUCKET)
    settings = {
        **postgres.env(),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "EM_CELERY_BROKER_URL": redis.url,
        "EM_CELERY_BACKEND_URL": redis.url,
        "EM_POOL_LIMITS": "host_ebi=1",
        "EM_ASSETS_ROOT": f"s3://{BUCKET}/corpus",
        "AWS_ACCESS_KEY_ID": FAKE_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
        "EM_CROP_PARTITIONS": str(len(PARTITION_KEYS)),  # read by launchers and workers
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    setup = subprocess.run(
        [sys.executable, "-m", "em_assets.deploy.instance"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert setup.returncode == 0, setup.stderr[-3000:]
    return settings


@pytest.fixture
def workers(deployment, tmp_path) -> Iterator[list[CeleryWorker]]:
    """Two workers with the launcher's environment, as on two machines."""
    started = [CeleryWorker(name, tmp_path, dict(os.environ)).start() for name in WORKERS]
    stopped: set[int] = set()
    try:
        for worker in started:
            worker.wait_ready()
        yield started
    finally:
        for worker in started:
            stopped |= worker.stop()
    assert not [pid for pid in stopped if psutil.pid_exists(pid)], "a worker process survived"


def single_process_manifests(root: str, monkeypatch) -> dict[str, str]:
    """The reference: the same graph in one process (the project's default)."""
    monkeypatch.setenv("EM_ASSETS_ROOT", root)
    assert materialize(ASSETS, resources=default_resources(), run_config=SMALL_CROPS).success
    return content_versions(UPath(root))


def content_versions(root: UPath) -> dict[str, str]:
    versions = {}
    for name in DATASETS:
        manifest = Manifest.model_validate_json((root / f"{name}.json").read_text())
        assert file_problems(root, manifest) == [], name  # every file verified as recorded
        versions[name] = manifest.content_version()
    report = Report.model_validate_json((root / "consolidated_report.json").read_text())
    versions["consolidated_report"] = report.data_version()
    return versions


def start_run(module: str, select: str, config: dict, *options: str) -> subprocess.Popen:
    """The README's command, as a launcher process."""
    command = [
        sys.executable, "-m", "dagster", "asset", "materialize", "-m", module,
        "--select", select, "--config-json", json.dumps(config), *options,
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(launcher: subprocess.Popen) -> int:
    """Wait for a launcher to succeed; its pid."""
    with launcher:
        try:
            _, err = launcher.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            launcher.kill()
            raise
    assert launcher.returncode == 0, err[-4000:].decode(errors="replace")
    return launcher.pid


def launch(select: str, config: dict) -> int:
    return finish(start_run("em_assets.deploy.definitions", select, config))


def latest_run_events(instance: DagsterInstance, runs: int = 1) -> list:
    return [
        record
        for run in instance.get_runs(limit=runs)
        for record in instance.all_logs(run.run_id)
        if record.dagster_event
    ]


STEP_BODY_EVENTS = {
    DagsterEventType.STEP_START,
    DagsterEventType.STEP_OUTPUT,
    DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.ASSET_CHECK_EVALUATION,
    DagsterEventType.STEP_SUCCESS,
}
"""What a step's own execution writes (the launcher writes engine events about steps too)."""


def step_intervals(records) -> dict[str, tuple[float, float]]:
    starts, ends = {}, {}
    for record in records:
        event = record.dagster_event
        if event.event_type == DagsterEventType.STEP_START:
            starts[event.step_key] = record.timestamp
        elif event.event_type == DagsterEventType.STEP_SUCCESS:
            ends[event.step_key] = record.timestamp
    assert starts.keys() == ends.keys(), "a step started but did not succeed"
    return {key: (starts[key], ends[key]) for key in starts}


def worker_names_of_steps(records, launchers: set[int], workers: list[CeleryWorker]) -> set[str]:
    """The workers whose processes wrote the steps' own events; none may be a launcher."""
    worker_of = {pid: worker.name for worker in workers for pid in worker.pids()}
    body_pids = {
        r.dagster_event.pid for r in records if r.dagster_event.event_type in STEP_BODY_EVENTS
    }
    assert not launchers & body_pids
    assert body_pids <= worker_of.keys(), (body_pids, worker_of)
    return {worker_of[pid] for pid in body_pids}


def assert_ebi_steps_took_turns(server) -> None:
    """EMPIAR and IDR (both EBI, pool host_ebi, limit 1) launched together onto two idle
    workers, every EBI answer slowed: without the limit they would overlap."""
    server.inject(Fault("slow", seconds=0.2, times=-1))
    server.reset_counters()
    launch("empiar_11759,idr_0086", {})
    with DagsterInstance.get() as instance:
        steps = step_intervals(latest_run_events(instance))
    empiar, idr = steps["empiar_11759"], steps["idr_0086"]
    assert empiar[1] <= idr[0] or idr[1] <= empiar[0], (empiar, idr)
    assert server.state.max_transfers <= 1


def backfill_partitioned_crops(workers: list[CeleryWorker], s3_client) -> dict[str, str]:
    """README step 5: the block partitions as parallel runs, then the assembling assets,
    in place of the crops (deleted first, so nothing is reused) on the workers' root."""
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            if item["Key"].startswith(("corpus/flyem_hemibrain", "corpus/openorganelle_jrc")):
                s3_client.delete_object(Bucket=BUCKET, Key=item["Key"])
    config = {"ops": {f"{name}_blocks": step for name, step in SMALL_CROPS["ops"].items()}}
    blocks = "flyem_hemibrain_blocks,openorganelle_jrc_blocks"
    launchers = [
        start_run("em_assets.deploy.scale_out", blocks, config, "--partition", key)
        for key in PARTITION_KEYS
    ]
    pids = {finish(launcher) for launcher in launchers}
    pids.add(finish(start_run("em_assets.deploy.scale_out", "flyem_hemibrain,openorganelle_jrc",
                              SMALL_CROPS)))  # fmt: skip
    with DagsterInstance.get() as instance:
        records = latest_run_events(instance, runs=len(PARTITION_KEYS) + 1)
    assert worker_names_of_steps(records, pids, workers)
    assert len(step_intervals(records)) >= 2 * len(PARTITION_KEYS) + 2
    root = UPath(f"s3://{BUCKET}/corpus")
    versions = {}
    for name in ("flyem_hemibrain", "openorganelle_jrc"):
        manifest = Manifest.model_validate_json((root / f"{name}.json").read_text())
        assert file_problems(root, manifest) == [], name
        versions[name] = manifest.content_version()
    return versions


def test_distributed_recipe_on_celery_workers_redis_and_postgres(
    all_sources, deployment, workers, services, s3_replica, monkeypatch
):
    launcher_pid = launch("*consolidated_report", SMALL_CROPS)
    with DagsterInstance.get() as instance:
        records = latest_run_events(instance)
    steps = step_intervals(records)
    assert {key.split(".")[0] for key in steps} >= {*DATASETS, "consolidated_report"}
    assert worker_names_of_steps(records, {launcher_pid}, workers) == set(WORKERS)

    distributed = content_versions(UPath(f"s3://{BUCKET}/corpus"))
    assert distributed == single_process_manifests(f"s3://{BUCKET}/single", monkeypatch)

    redis, postgres = services
    stored = [
        UPath(f"s3://{BUCKET}/{item['Key']}").read_bytes()
        for item in s3_replica.client().list_objects_v2(Bucket=BUCKET)["Contents"]
    ]
    for secret in (FAKE_KEY_ID, FAKE_SECRET, postgres.password):
        needle = secret.encode()
        assert needle not in postgres.dump(), secret
        assert needle not in redis.stored_bytes(), secret
        assert not any(needle in body for body in stored), secret

    monkeypatch.setenv("EM_ASSETS_ROOT", f"s3://{BUCKET}/corpus")
    assert_ebi_steps_took_turns(all_sources["http"])

    partitioned = backfill_partitioned_crops(workers, s3_replica.client())
    assert partitioned == {name: distributed[name] for name in partitioned}
