"""Small helpers shared by tests: run the CLI like a user, read what Dagster recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey, DagsterInstance, ExecuteInProcessResult


def dagster_home(base: Path) -> Path:
    home = base / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    return home


def run_cli(args: list[str], base: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run a `dagster` command in a subprocess, with a persistent instance under `base`."""
    assert args[0] == "dagster"
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home(base))}
    return subprocess.run(
        [sys.executable, "-m", "dagster", *args[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def materialization_metadata(base: Path, asset: str) -> dict:
    """The metadata of the latest materialization recorded in the CLI's instance."""
    with DagsterInstance.from_config(str(dagster_home(base))) as instance:
        event = instance.get_latest_materialization_event(AssetKey(asset))
        assert event is not None, f"no materialization of {asset} recorded"
        return dict(event.asset_materialization.metadata)


def step_error(result: ExecuteInProcessResult) -> str:
    """Every error message of a failed in-process run, joined, for assertions on wording."""
    texts = [
        event.event_specific_data.error.to_string()
        for event in result.all_events
        if event.is_failure and getattr(event.event_specific_data, "error", None)
    ]
    assert texts, "the run reported no error"
    return "\n".join(texts)


def in_a_fresh_process(script: str) -> dict:
    """Run `script` in a new interpreter (pytest's own has imported everything a test may
    want to see imported, or not) and return the JSON object its last line prints, after
    checking it reports `success`."""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["success"], done.stderr[-3000:]
    return seen
