"""The UI path end to end: `dagster dev` from the repo root, "Materialize all" through GraphQL
(the launch the button sends), results read back through GraphQL, and a real browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

from em_assets_tests import early
from em_assets_tests.conftest import SMALL_CROPS
from em_assets_tests.dagster_dev import DagsterDev, start_dagster_dev

DATASETS = ["empiar_11759", "epfl_hippocampus", "flyem_hemibrain", "idr_0086", "openorganelle_jrc"]
SIX = sorted([*DATASETS, "consolidated_report"])
LOCATION = "em_assets"
GROUP = "em_datasets"
ASSETS_QUERY = """
query ($group: AssetGroupSelector!) {
  assetNodes(group: $group) {
    assetKey { path }
    description
    kinds
    metadataEntries { label }
    assetMaterializations(limit: 1) { runId metadataEntries { label } }
    assetChecksOrError {
      ... on AssetChecks {
        checks {
          name
          blocking
          executionForLatestMaterialization { status evaluation { success severity } }
        }
      }
    }
  }
}
"""
SCHEDULES_QUERY = """
query ($repository: RepositorySelector!) {
  schedulesOrError(repositorySelector: $repository) {
    ... on Schedules { results { name cronSchedule } }
  }
}
"""
GROUP_SELECTOR = {
    "groupName": GROUP,
    "repositoryName": "__repository__",
    "repositoryLocationName": LOCATION,
}


@pytest.fixture
def dagster_dev(all_sources, tmp_path, pytestconfig):
    early.wait_all()  # the shutdown check below is timed: nothing of ours runs beside it
    server = start_dagster_dev(pytestconfig.rootpath, tmp_path / "dagster_home", dict(os.environ))
    yield server
    leftovers = server.stop()
    assert leftovers == [], (
        f"processes left running: {leftovers}\nlog (their stacks last):\n"
        + server.log.read_text(errors="replace")[-12000:]
    )


def wait_for_run(client: DagsterGraphQLClient, run_id: str, timeout: float = 600) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get_run_status(run_id).value
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(2)
    raise TimeoutError(f"run {run_id} still going after {timeout} s")


OUR_SOURCE = re.compile(r"[/\\]em_assets[/\\][\w/\\]+\.py:\d+")


def our_warnings(server: DagsterDev) -> list[str]:
    """Any error in the server's output, and warnings raised from this project's source files
    (Dagster's own notices, such as the `dg dev` suggestion, are not ours)."""
    return [
        line
        for line in server.log.read_text().splitlines()
        if "ERROR" in line or ("Warning" in line and OUR_SOURCE.search(line))
    ]


def test_materialize_all_from_the_ui_and_read_everything_back(dagster_dev):
    dagster_dev.wait_until_ready(asset_count=6)
    assert our_warnings(dagster_dev) == []

    before = dagster_dev.graphql(ASSETS_QUERY, {"group": GROUP_SELECTOR})["assetNodes"]
    assert sorted(n["assetKey"]["path"][0] for n in before) == SIX
    for node in before:
        assert node["description"] and node["kinds"], node["assetKey"]
    catalog = {n["assetKey"]["path"][0]: {e["label"] for e in n["metadataEntries"]} for n in before}
    for name in DATASETS:
        assert {"source", "license", "citation", "documented_voxel_size"} <= catalog[name]

    client = DagsterGraphQLClient("127.0.0.1", port_number=dagster_dev.port)
    try:
        run_id = client.submit_job_execution(
            "__ASSET_JOB",
            repository_location_name=LOCATION,
            repository_name="__repository__",
            asset_selection=SIX,
            run_config=SMALL_CROPS,
        )
    except DagsterGraphQLClientError as error:
        pytest.fail(f"launch refused: {error}\n{dagster_dev.log.read_text()[-3000:]}")
    assert wait_for_run(client, run_id) == "SUCCESS", dagster_dev.log.read_text()[-5000:]

    after = dagster_dev.graphql(ASSETS_QUERY, {"group": GROUP_SELECTOR})["assetNodes"]
    by_name = {n["assetKey"]["path"][0]: n for n in after}
    for name in DATASETS:
        latest = by_name[name]["assetMaterializations"][0]
        assert latest["runId"] == run_id
        labels = {e["label"] for e in latest["metadataEntries"]}
        assert {"voxel_size", "voxel_size_source", "files", "thumbnail", "file_count"} <= labels
        checks = by_name[name]["assetChecksOrError"]["checks"]
        assert checks, name
        for check in checks:
            execution = check["executionForLatestMaterialization"]
            assert execution is not None, (name, check["name"])
            if check["blocking"]:
                assert execution["evaluation"]["success"], (name, check["name"])
    report = by_name["consolidated_report"]["assetMaterializations"][0]
    assert {"comparison", "findings", "voxel_size_chart"} <= {
        e["label"] for e in report["metadataEntries"]
    }
    schedules = dagster_dev.graphql(
        SCHEDULES_QUERY,
        {"repository": {"repositoryName": "__repository__", "repositoryLocationName": LOCATION}},
    )["schedulesOrError"]["results"]
    assert sorted(s["name"] for s in schedules) == ["monthly_deep_verify", "weekly_refresh"]
    if os.environ.get("EM_SCREENSHOT_TO") and chromium():
        # How the README's screenshot is made: the materialized graph, against the replicas.
        page = f"{dagster_dev.url}/locations/{LOCATION}/asset-groups/{GROUP}"
        target = os.environ["EM_SCREENSHOT_TO"]
        shot = headless(page, dagster_dev.log.parent / "profile", f"--screenshot={target}")
        assert shot.returncode == 0, shot.stderr[-2000:]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def headless(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            chromium() or "chromium", "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={profile}", "--virtual-time-budget=15000",
            "--window-size=1400,900", *extra, url,
        ],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def test_asset_graph_renders_in_a_real_browser(dagster_dev, tmp_path):
    if chromium() is None:
        if os.environ.get("EM_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed, and EM_REQUIRE_BROWSER is set (as in CI)")
        pytest.skip("chromium not installed (apt-get install chromium); CI installs it")
    dagster_dev.wait_until_ready(asset_count=6)
    page = f"{dagster_dev.url}/locations/{LOCATION}/asset-groups/{GROUP}"
    dom = headless(page, tmp_path / "profile-dom", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    for name in SIX:
        assert name in dom.stdout, f"{name} not rendered"
    screenshot = tmp_path / "asset_graph.png"
    shot = headless(page, tmp_path / "profile-shot", f"--screenshot={screenshot}")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert (
        screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 10_000
    )
