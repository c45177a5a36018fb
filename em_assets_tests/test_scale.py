"""Beyond one machine: object-storage roots with steps in separate processes, no secrets in
what Dagster records, and per-host pools that cap concurrent transfers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from upath import UPath

from em_assets.manifest.model import Manifest
from em_assets.manifest.verify import file_problems
from em_assets.report.findings import Report
from em_assets_tests.conftest import SMALL_CROPS
from em_assets_tests.helpers import dagster_home, run_cli
from em_assets_tests.replicas.http_server import Fault

DATASETS = ["epfl_hippocampus", "flyem_hemibrain", "empiar_11759", "idr_0086", "openorganelle_jrc"]
FAKE_KEY_ID = "AKIAEMASSETSFAKE7Q2X"
FAKE_SECRET = "em-assets-fake-secret-3b9f0c1e"


def materialize_everything(base: Path) -> None:
    completed = run_cli(
        ["dagster", "asset", "materialize", "-m", "em_assets", "--select", "*consolidated_report",
         "--config-json", json.dumps(SMALL_CROPS)],
        base,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "multiprocess" in completed.stderr.lower()  # steps ran in separate processes


def assert_everything_reads_back(root: UPath) -> None:
    for name in DATASETS:
        manifest = Manifest.model_validate_json((root / f"{name}.json").read_text())
        assert manifest.file_count >= 1
        assert file_problems(root, manifest) == [], name
    report = Report.model_validate_json((root / "consolidated_report.json").read_text())
    assert report.summary.datasets == sorted(DATASETS)
    for suffix in (".md", ".csv", "_voxel_sizes.png"):
        assert (root / f"consolidated_report{suffix}").exists(), suffix


def files_containing(base: Path, needle: bytes) -> list[str]:
    return [str(p) for p in base.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_whole_graph_on_s3_in_separate_processes_without_leaking_credentials(
    all_sources, s3_replica, tmp_path, monkeypatch
):
    s3_replica.create_bucket("em-team-root")
    monkeypatch.setenv("EM_ASSETS_ROOT", "s3://em-team-root/corpus")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    materialize_everything(tmp_path)

    root = UPath("s3://em-team-root/corpus")
    assert_everything_reads_back(root)
    keys = [
        o["Key"] for o in s3_replica.client().list_objects_v2(Bucket="em-team-root")["Contents"]
    ]
    assert any(k.startswith("corpus/flyem_hemibrain/crop-") for k in keys)
    assert not any(k.endswith(".part") for k in keys)
    assert not all_sources["root"].exists()  # nothing fell back to the local default

    for secret in (FAKE_KEY_ID, FAKE_SECRET):
        assert files_containing(dagster_home(tmp_path), secret.encode()) == [], secret
        stored = [
            k for k in keys if secret.encode() in root.joinpath(*k.split("/")[1:]).read_bytes()
        ]
        assert stored == [], secret


def test_whole_graph_on_gcs_in_separate_processes(all_sources, gcs_replica, tmp_path, monkeypatch):
    import gcsfs

    gcsfs.GCSFileSystem().mkdir("em-team-root")
    monkeypatch.setenv("EM_ASSETS_ROOT", "gs://em-team-root/corpus")
    materialize_everything(tmp_path)
    assert_everything_reads_back(UPath("gs://em-team-root/corpus"))
    assert not all_sources["root"].exists()


def set_pool_limit(base: Path, pool: str, limit: int) -> None:
    (dagster_home(base) / "dagster.yaml").write_text(
        "concurrency:\n  pools:\n    granularity: op\n"
    )
    completed = run_cli(["dagster", "instance", "concurrency", "set", pool, str(limit)], base)
    assert completed.returncode == 0, completed.stderr[-2000:]


def ebi_transfers_at_once(server, base: Path) -> int:
    """Both EBI-backed assets in one run, every EBI response slowed so overlaps would show."""
    server.inject(Fault("stall", seconds=0.3, times=-1))
    server.reset_counters()
    completed = run_cli(
        ["dagster", "asset", "materialize", "-m", "em_assets", "--select", "empiar_11759,idr_0086"],
        base,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return server.state.max_in_flight


@pytest.mark.parametrize(("limit", "expected"), [(1, 1), (None, 2)])
def test_ebi_pool_limits_concurrent_transfers(
    empiar_replica, idr_replica, storage_root, tmp_path, limit, expected
):
    server, _ = empiar_replica
    if limit is not None:
        set_pool_limit(tmp_path, "host_ebi", limit)
    assert ebi_transfers_at_once(server, tmp_path) == expected
