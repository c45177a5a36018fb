"""The deployment module without services: what it loads, renders and refuses.

The run itself, on Redis, Postgres and Celery workers, is in test_distributed.py.
"""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from dagster import Definitions
from dagster._core.instance.config import dagster_instance_config

from em_assets import definitions as project
from em_assets.deploy import definitions as deploy
from em_assets.deploy import instance, workers
from em_assets.deploy import scale_out as deploy_scale_out
from em_assets.scale_out import definitions as scale_out
from em_assets.settings import ConfigurationError


@pytest.mark.parametrize(
    ("deployed", "original"), [(deploy.defs, project.defs), (deploy_scale_out.defs, scale_out.defs)]
)
def test_deployed_definitions_are_the_projects_with_the_celery_executor(deployed, original):
    Definitions.validate_loadable(deployed)
    assert deployed.executor.name == "celery"
    assert original.executor is not deployed.executor
    assert deployed.assets == original.assets
    assert deployed.asset_checks == original.asset_checks
    assert deployed.resources == original.resources


def test_launcher_and_workers_use_the_broker_and_backend_from_the_environment(monkeypatch):
    monkeypatch.setenv("EM_CELERY_BROKER_URL", "redis://broker.example:6379/1")
    monkeypatch.setenv("EM_CELERY_BACKEND_URL", "redis://backend.example:6379/2")
    from em_assets.deploy.executor import celery_app_args, celery_config

    assert celery_app_args()["broker"] == "redis://broker.example:6379/1"
    assert celery_app_args()["backend"] == "redis://backend.example:6379/2"
    # The launcher's config names the variables, so a password in a URL is never stored.
    assert celery_config() == {
        "broker": {"env": "EM_CELERY_BROKER_URL"},
        "backend": {"env": "EM_CELERY_BACKEND_URL"},
    }
    monkeypatch.delenv("EM_CELERY_BROKER_URL")
    assert celery_config()["broker"] == celery_app_args()["broker"] == "redis://127.0.0.1:6379/0"
    assert workers.app.conf.worker_prefetch_multiplier == 1  # a busy worker takes no more


def test_instance_template_renders_a_valid_postgres_instance(monkeypatch, tmp_path):
    monkeypatch.setenv("EM_MAX_CONCURRENT_RUNS", "3")
    monkeypatch.setenv("EM_POOL_DEFAULT_LIMIT", "2")
    rendered = yaml.safe_load(instance.render())
    config, custom_instance_class = dagster_instance_config(_home_with(tmp_path, instance.render()))
    assert custom_instance_class is None
    assert rendered["concurrency"] == {
        "runs": {"max_concurrent_runs": 3},
        "pools": {"granularity": "op", "default_limit": 2},
    }
    assert rendered["storage"]["postgres"]["postgres_db"]["password"] == {
        "env": "DAGSTER_PG_PASSWORD"
    }
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"


def _home_with(directory, text: str) -> str:
    (directory / "dagster.yaml").write_text(text)
    return str(directory)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("EM_POOL_LIMITS", "host_eb=2", "host_ebi"),
        ("EM_POOL_LIMITS", "host_ebi=two", "pool=limit"),
        ("EM_POOL_DEFAULT_LIMIT", "0", "EM_POOL_DEFAULT_LIMIT='0'"),
        ("EM_MAX_CONCURRENT_RUNS", "many", "EM_MAX_CONCURRENT_RUNS='many'"),
    ],
)
def test_bad_deployment_settings_are_named(monkeypatch, name, value, message):
    for variable in ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER",
                     "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"):  # fmt: skip
        monkeypatch.setenv(variable, "x")
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=message):
        instance.set_up()


def test_instance_set_up_names_the_missing_postgres_variables(monkeypatch):
    monkeypatch.delenv("DAGSTER_PG_PASSWORD", raising=False)
    with pytest.raises(ConfigurationError, match="DAGSTER_PG_PASSWORD"):
        instance.set_up()


def test_dg_check_defs_passes(pytestconfig):
    """`dg check defs` reads `[tool.dg]` in pyproject.toml and loads the project's module,
    the one `dagster dev` loads through workspace.yaml."""
    tool = tomllib.loads((pytestconfig.rootpath / "pyproject.toml").read_text())["tool"]
    assert tool["dg"]["project"]["code_location_target_module"] == tool["dagster"]["module_name"]
    dg = shutil.which("dg", path=str(Path(sys.executable).parent))
    assert dg, "dagster-dg-cli is in the dev extra"
    completed = subprocess.run(
        [dg, "check", "defs"], cwd=pytestconfig.rootpath,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    assert "All definitions loaded successfully" in completed.stdout + completed.stderr
