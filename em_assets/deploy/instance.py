"""Sets up a deployment's Dagster instance: `python -m em_assets.deploy.instance`.

Renders the packaged `dagster.yaml` into `$DAGSTER_HOME` (the run queue's size and the
default pool limit from `EM_MAX_CONCURRENT_RUNS` and `EM_POOL_DEFAULT_LIMIT`), then stores
the per-host limits of `EM_POOL_LIMITS` in the instance (Postgres), where every launcher
and worker sees them. Safe to re-run: it rewrites the file and sets the limits again.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from string import Template

from dagster import DagsterInstance

from em_assets.deploy.settings import (
    MAX_CONCURRENT_RUNS,
    POOL_DEFAULT_LIMIT,
    POSTGRES_VARIABLES,
    pool_limits,
    whole_number,
)
from em_assets.settings import ConfigurationError

TEMPLATE = Path(__file__).with_name("dagster.yaml")


def render() -> str:
    """The instance's `dagster.yaml`, settings filled in, Postgres left to `{env: ...}`."""
    return Template(TEMPLATE.read_text()).substitute(
        max_concurrent_runs=whole_number(MAX_CONCURRENT_RUNS, 1, 1000),
        pool_default_limit=whole_number(POOL_DEFAULT_LIMIT, 1, 1000),
    )


def dagster_home() -> Path:
    home = os.environ.get("DAGSTER_HOME", "")
    if not home or not Path(home).is_absolute():
        raise ConfigurationError(
            f"DAGSTER_HOME={home!r}: set it to an absolute directory for the instance"
        )
    return Path(home)


def set_up() -> dict[str, int]:
    """Write `dagster.yaml`, apply the pool limits, and return them."""
    missing = [name for name in POSTGRES_VARIABLES if not os.environ.get(name)]
    if missing:
        raise ConfigurationError(f"set {', '.join(missing)} (the instance lives in Postgres)")
    limits = pool_limits()
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(render())
    with DagsterInstance.get() as instance:
        for pool, limit in limits.items():
            instance.event_log_storage.set_concurrency_slots(pool, limit)
    return limits


def main() -> None:
    try:
        limits = set_up()
    except ConfigurationError as error:
        sys.exit(f"error: {error}")
    applied = ", ".join(f"{pool}={limit}" for pool, limit in limits.items()) or "none"
    print(f"wrote {dagster_home() / 'dagster.yaml'}; per-host pool limits: {applied}")


if __name__ == "__main__":
    main()
