"""Dagster's Celery executor, pointed at the broker and backend named by the environment.

The launcher and the workers (`workers.py`) build their Celery app from the same
`celery_app_args()`, so a step is queued where the workers listen.
"""

from __future__ import annotations

import os
from typing import Any

from dagster import ExecutorDefinition
from dagster_celery import celery_executor
from dagster_celery.executor import CeleryExecutor

from em_assets.deploy.settings import CELERY_BACKEND_URL, CELERY_BROKER_URL
from em_assets.settings import EnvSetting


def _config_value(setting: EnvSetting) -> str | dict[str, str]:
    """`{"env": NAME}` when the variable is set, so a URL carrying a password is resolved at
    run time and never stored in the run's config; else the default."""
    return {"env": setting.name} if setting.name in os.environ else setting.default


def celery_config() -> dict[str, Any]:
    """The executor's config: broker and backend from `EM_CELERY_*`."""
    return {
        "broker": _config_value(CELERY_BROKER_URL),
        "backend": _config_value(CELERY_BACKEND_URL),
    }


def celery_from_environment() -> ExecutorDefinition:
    """`celery_executor`, configured by `celery_config()`."""
    return celery_executor.configured(celery_config(), name="celery")


def celery_app_args() -> dict[str, Any]:
    """The arguments of the Celery app the executor submits to, for the workers' app."""
    return CeleryExecutor.for_cli(
        broker=CELERY_BROKER_URL.value(), backend=CELERY_BACKEND_URL.value()
    ).app_args()
