"""The environment variables an operator sets to deploy across machines.

Postgres's own variables (`DAGSTER_PG_*`) are referenced from `dagster.yaml` as `{env: ...}`,
so the password is read where it is used and never written to a file or the event log.
"""

from __future__ import annotations

from em_assets.settings import (
    EBI_POOL,
    EPFL_POOL,
    GCS_POOL,
    S3_JANELIA_POOL,
    ConfigurationError,
    EnvSetting,
)

HOST_POOLS = (EPFL_POOL, GCS_POOL, EBI_POOL, S3_JANELIA_POOL)

CELERY_BROKER_URL = EnvSetting(
    "EM_CELERY_BROKER_URL",
    "redis://127.0.0.1:6379/0",
    "Celery broker the launcher queues steps on and the workers take them from",
)
CELERY_BACKEND_URL = EnvSetting(
    "EM_CELERY_BACKEND_URL",
    "redis://127.0.0.1:6379/0",
    "Celery result backend the workers return each step's events through",
)
POOL_DEFAULT_LIMIT = EnvSetting(
    "EM_POOL_DEFAULT_LIMIT",
    "4",
    "steps at once in a pool without its own limit (every source host is a pool)",
)
POOL_LIMITS = EnvSetting(
    "EM_POOL_LIMITS",
    "",
    "per-host pool limits, e.g. 'host_ebi=2,host_gcs_public=8'",
)
MAX_CONCURRENT_RUNS = EnvSetting(
    "EM_MAX_CONCURRENT_RUNS",
    "4",
    "runs the queue lets run at once (backfill partitions are runs)",
)
POSTGRES_VARIABLES = {
    "DAGSTER_PG_HOST": "Postgres host",
    "DAGSTER_PG_PORT": "Postgres port",
    "DAGSTER_PG_USER": "Postgres user",
    "DAGSTER_PG_PASSWORD": "Postgres password",
    "DAGSTER_PG_DB": "Postgres database holding runs, event log and schedules",
}

DEPLOY_SETTINGS = (
    CELERY_BROKER_URL,
    CELERY_BACKEND_URL,
    POOL_DEFAULT_LIMIT,
    POOL_LIMITS,
    MAX_CONCURRENT_RUNS,
)


def whole_number(setting: EnvSetting, low: int, high: int) -> int:
    """The setting as an integer in [low, high], or an error naming the variable."""
    value = setting.value().strip()
    if not value.isdigit() or not low <= int(value) <= high:
        raise ConfigurationError(
            f"{setting.name}={value!r} must be a whole number from {low} to {high}"
        )
    return int(value)


def pool_limits() -> dict[str, int]:
    """`EM_POOL_LIMITS` parsed: pool name to limit. A misspelt pool is an error, not a limit
    that silently never applies."""
    limits: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in POOL_LIMITS.value().split(","))):
        pool, _, limit = (part.strip() for part in item.partition("="))
        if pool not in HOST_POOLS or not limit.isdigit():
            raise ConfigurationError(
                f"{POOL_LIMITS.name}: {item!r} is not 'pool=limit' with pool one of "
                f"{', '.join(HOST_POOLS)} (e.g. 'host_ebi=2')"
            )
        limits[pool] = int(limit)
    return limits
