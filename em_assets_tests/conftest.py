"""Shared fixtures: replica servers, a temporary storage root, and isolated Dagster/cloud homes."""

from __future__ import annotations

import os

# Before anything imports gcsfs: its experimental bucket probe stalls against the emulator.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"

from collections.abc import Iterator
from pathlib import Path

import pytest

from em_assets.settings import ALL_SETTINGS
from em_assets_tests import early
from em_assets_tests.replicas.ebi import serve_idr
from em_assets_tests.replicas.empiar import serve_empiar
from em_assets_tests.replicas.epfl import epfl_base_url, serve_epfl
from em_assets_tests.replicas.gcs import GcsReplica
from em_assets_tests.replicas.groundtruth import write_groundtruth
from em_assets_tests.replicas.http_server import ReplicaHTTPServer
from em_assets_tests.replicas.openorganelle import BUCKET, ZarrReplica, write_pyramid
from em_assets_tests.replicas.precomputed import (
    EDGE,
    LAYER_PATH,
    SPARSE,
    PrecomputedReplica,
    tissue_volume,
    write_layer,
)
from em_assets_tests.replicas.s3 import S3Replica
from em_assets_tests.replicas.segmentation import SegmentationReplica, write_hemibrain_labels


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items[:] = early.waiting_last(items)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the long self-contained checks now, beside the rest (see early.py)."""
    if not session.config.option.collectonly:
        early.start_for(session.items)


def pytest_sessionfinish(session: pytest.Session) -> None:
    early.stop_all()


@pytest.fixture(autouse=True)
def isolated_homes(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing a test runs may write to $HOME or pick up the developer's own settings."""
    homes = tmp_path_factory.mktemp("homes")
    monkeypatch.setenv("CLOUD_VOLUME_DIR", str(homes / "cloudvolume"))
    monkeypatch.setenv("DAGSTER_HOME", str(homes / "dagster"))
    (homes / "dagster").mkdir()
    for setting in ALL_SETTINGS:
        monkeypatch.delenv(setting.name, raising=False)


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


@pytest.fixture(scope="session")
def precomputed_tree(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PrecomputedReplica]:
    """Hemibrain-like layers: sharded with voxel sizes unlike the documented 8 nm (the
    code must read them), and unsharded with the documented 8 nm. Two more for placement:
    `edge`, 5 mips like the real pyramid's coarse end, tissue from x = 88 on, so the default
    128-voxel candidate (seed 2020, x 0-128) straddles the tissue edge, mostly padding; and
    `sparse`, tissue only in the last 48 voxels of x, so no 128-voxel crop is mostly tissue."""
    root = tmp_path_factory.mktemp("precomputed")
    data = tissue_volume()
    return {
        "sharded": write_layer(root / LAYER_PATH, (9, 9, 10), True, data),
        "unsharded": write_layer(root / "unsharded" / LAYER_PATH, (8, 8, 8), False, data),
        "edge": write_layer(
            root / "edge" / LAYER_PATH, (8, 8, 8), True, tissue_volume(tissue_x=EDGE), mips=5
        ),
        "sparse": write_layer(
            root / "sparse" / LAYER_PATH, (8, 8, 8), False, tissue_volume(tissue_x=SPARSE)
        ),
    }


@pytest.fixture(scope="session")
def hemibrain_labels(precomputed_tree) -> dict[str, SegmentationReplica]:
    """Label layers beside the sharded EM layer: a sharded segmentation on its grid and a
    mito layer at twice its voxel size."""
    sharded = precomputed_tree["sharded"]
    root = sharded.directory.parents[len(LAYER_PATH.split("/")) - 1]
    return write_hemibrain_labels(root, sharded.resolution)


@pytest.fixture
def hemibrain_replica(precomputed_tree, hemibrain_labels, monkeypatch: pytest.MonkeyPatch):
    """The sharded layer and its label layers served over HTTP, with EM_HEMIBRAIN_URL,
    EM_HEMIBRAIN_SEGMENTATION_URL and EM_HEMIBRAIN_MITO_URL pointing at them."""
    server = ReplicaHTTPServer()
    server.state.directory = precomputed_tree["sharded"].directory.parents[
        len(LAYER_PATH.split("/")) - 1
    ]
    server.start()
    monkeypatch.setenv("EM_HEMIBRAIN_URL", precomputed_tree["sharded"].cloudpath(server))
    for name, variable in (
        ("segmentation", "EM_HEMIBRAIN_SEGMENTATION_URL"),
        ("mito", "EM_HEMIBRAIN_MITO_URL"),
    ):
        layer = hemibrain_labels[name]
        monkeypatch.setenv(variable, layer.cloudpath(server.base_url, server.state.directory))
    yield server, precomputed_tree
    server.stop()


@pytest.fixture
def openorganelle_replica(
    s3_replica: S3Replica, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ZarrReplica]:
    """The jrc_mus-liver pyramid in moto, with EM_OPENORGANELLE_URL at its real s3:// URL."""
    replica = write_pyramid(s3_replica)
    monkeypatch.setenv("EM_OPENORGANELLE_URL", replica.url)
    yield replica
    client = s3_replica.client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


@pytest.fixture
def groundtruth_replica(openorganelle_replica: ZarrReplica, s3_replica: S3Replica):
    """CellMap ground-truth crops (crop124, crop1038) inside the jrc_mus-liver replica."""
    return openorganelle_replica, write_groundtruth(s3_replica)


@pytest.fixture
def idr_replica(http_replica: ReplicaHTTPServer, monkeypatch: pytest.MonkeyPatch):
    """EBI's IDR directory and IDR's JSON on one local server (they are two hosts in reality)."""
    files = serve_idr(http_replica)
    monkeypatch.setenv("EM_EBI_FILES_URL", http_replica.base_url)
    monkeypatch.setenv("EM_IDR_URL", http_replica.base_url)
    return http_replica, files


@pytest.fixture
def empiar_replica(http_replica: ReplicaHTTPServer, monkeypatch: pytest.MonkeyPatch):
    """EMPIAR's API and EBI's data directory on one local server."""
    files = serve_empiar(http_replica)
    monkeypatch.setenv("EM_EMPIAR_API_URL", http_replica.base_url + "/empiar/api")
    monkeypatch.setenv("EM_EBI_FILES_URL", http_replica.base_url)
    return http_replica, files


SMALL_CROPS = {
    "ops": {
        "flyem_hemibrain": {"config": {"crop_size": 64}},
        "openorganelle_jrc": {"config": {"crop_size": 64}},
    }
}
"""Run config that keeps the two crops test-sized; everything else runs with its defaults."""


@pytest.fixture
def all_sources(
    epfl_replica,
    hemibrain_replica,
    empiar_replica,
    idr_replica,
    openorganelle_replica,
    storage_root,
):
    """Every outside service replicated, and the EM_* variables pointing at the replicas."""
    return {
        "http": epfl_replica[0],
        "precomputed": hemibrain_replica[0],
        "root": storage_root,
    }


@pytest.fixture
def gcs_replica(monkeypatch: pytest.MonkeyPatch) -> Iterator[GcsReplica]:
    """The GCS emulator, reached the standard way: STORAGE_EMULATOR_HOST."""
    import gcsfs

    replica = GcsReplica().start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", replica.endpoint)
    gcsfs.GCSFileSystem.clear_instance_cache()
    yield replica
    gcsfs.GCSFileSystem.clear_instance_cache()
    replica.stop()
