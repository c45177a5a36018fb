"""Shared fixtures: replica servers, a temporary storage root, and isolated Dagster/cloud homes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from em_assets_tests.replicas.epfl import epfl_base_url, serve_epfl
from em_assets_tests.replicas.http_server import ReplicaHTTPServer
from em_assets_tests.replicas.s3 import S3Replica


@pytest.fixture(autouse=True)
def isolated_homes(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing a test runs may write to $HOME or pick up the developer's own settings."""
    homes = tmp_path_factory.mktemp("homes")
    monkeypatch.setenv("CLOUD_VOLUME_DIR", str(homes / "cloudvolume"))
    monkeypatch.setenv("DAGSTER_HOME", str(homes / "dagster"))
    (homes / "dagster").mkdir()
    for name in list(os.environ):
        if name.startswith("EM_"):
            monkeypatch.delenv(name)


@pytest.fixture
def http_replica() -> Iterator[ReplicaHTTPServer]:
    server = ReplicaHTTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def epfl_replica(http_replica: ReplicaHTTPServer, monkeypatch: pytest.MonkeyPatch):
    """The EPFL directory served locally, with EM_EPFL_URL pointing at it."""
    files = serve_epfl(http_replica)
    monkeypatch.setenv("EM_EPFL_URL", epfl_base_url(http_replica))
    return http_replica, files


@pytest.fixture
def storage_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "em_data"
    monkeypatch.setenv("EM_ASSETS_ROOT", str(root))
    return root


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Replica]:
    replica = S3Replica().start()
    yield replica
    replica.stop()


@pytest.fixture
def s3_replica(s3_server: S3Replica, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Replica]:
    """moto S3 reached the standard way: AWS_ENDPOINT_URL plus credentials in the environment."""
    import s3fs

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3fs.S3FileSystem.clear_instance_cache()
    yield s3_server
    s3fs.S3FileSystem.clear_instance_cache()
