"""Beyond one machine: object-storage roots with steps in separate processes, no secrets in
what Dagster records, and per-host pools that cap concurrent transfers."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import zarr
from dagster import materialize
from upath import UPath

from em_assets.crops.resource import CropCopy
from em_assets.datasets import flyem_hemibrain as hemibrain_dataset
from em_assets.datasets.crop_flow import PartitionMismatchError, assemble, copy_partition
from em_assets.datasets.flyem_hemibrain import HemibrainConfig, flyem_hemibrain
from em_assets.definitions import ASSETS
from em_assets.images.open import open_image
from em_assets.integrity.verify import file_problems
from em_assets.manifest.model import Manifest
from em_assets.report.findings import Report
from em_assets.resources import default_resources
from em_assets.scale_out.partitioned_crops import PARTITIONS, partitioned_crop
from em_assets.sources import HemibrainVolume
from em_assets.storage.root import StorageRoot
from em_assets_tests.conftest import SMALL_CROPS
from em_assets_tests.helpers import dagster_home, run_cli
from em_assets_tests.replicas.http_server import Fault

DATASETS = ["epfl_hippocampus", "flyem_hemibrain", "empiar_11759", "idr_0086", "openorganelle_jrc"]
MULTIPROCESS = {"execution": {"config": {"multiprocess": {}}}}
"""Steps in separate processes, as distributed executors run them (the default is one)."""
FAKE_KEY_ID = "AKIAEMASSETSFAKE7Q2X"
FAKE_SECRET = "em-assets-fake-secret-3b9f0c1e"


def materialize_everything(base: Path) -> None:
    completed = run_cli(
        ["dagster", "asset", "materialize", "-m", "em_assets", "--select", "*consolidated_report",
         "--config-json", json.dumps({**SMALL_CROPS, **MULTIPROCESS})],
        base,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "multiprocess" in completed.stderr.lower()  # steps ran in separate processes


def assert_everything_reads_back(root: UPath) -> None:
    for name in DATASETS:
        manifest = Manifest.model_validate_json((root / f"{name}.json").read_text())
        assert manifest.file_count >= 1
        assert file_problems(root, manifest) == [], name
        assert manifest.images, name
        for image in manifest.images:  # every dataset is readable as OME-Zarr from this root
            opened = open_image(name, root=root, name=image.name)
            assert list(opened.data.shape) == image.shape_zyx, (name, image.name)
            assert np.asarray(opened.levels[-1][:]).shape == tuple(opened.levels[-1].shape)
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


def test_whole_graph_on_gcs(all_sources, gcs_replica, monkeypatch):
    """Every asset and the report written to and read back from a gs:// root. In one
    process: steps in separate processes on an object-store root are the S3 test's subject
    above (and the distributed test's), and nothing in the storage code depends on which
    process runs a step; here the gs:// side is what is tested, and a process per step
    would only add a Python start-up per step."""
    import gcsfs

    gcsfs.GCSFileSystem().mkdir("em-team-root")
    monkeypatch.setenv("EM_ASSETS_ROOT", "gs://em-team-root/corpus")
    assert materialize(ASSETS, resources=default_resources(), run_config=SMALL_CROPS).success
    assert_everything_reads_back(UPath("gs://em-team-root/corpus"))
    assert not all_sources["root"].exists()


def set_pool_limit(base: Path, pool: str, limit: int) -> None:
    (dagster_home(base) / "dagster.yaml").write_text(
        "concurrency:\n  pools:\n    granularity: op\n"
    )
    completed = run_cli(["dagster", "instance", "concurrency", "set", pool, str(limit)], base)
    assert completed.returncode == 0, completed.stderr[-2000:]


def ebi_transfers_at_once(server, base: Path) -> int:
    """Both EBI-backed assets in one run, every EBI transfer slowed so overlaps would show.

    Each step is a process of its own that imports the definitions first; on a loaded
    2-core machine their starts drift apart by seconds, and with 0.3 s per request one
    asset's transfers could end before the other's began (a fresh-clone CI run saw 1, not
    2, without a limit). At 1 s per request each asset transfers for several seconds."""
    server.inject(Fault("slow", seconds=1.0, times=-1))
    server.reset_counters()
    completed = run_cli(
        [
            "dagster",
            "asset",
            "materialize",
            "-m",
            "em_assets",
            "--select",
            "empiar_11759,idr_0086",
            "--config-json",
            json.dumps(MULTIPROCESS),
        ],
        base,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return server.state.max_transfers


@pytest.mark.parametrize(("limit", "expected"), [(1, 1), (None, 2)])
def test_ebi_pool_limits_concurrent_transfers(
    empiar_replica, idr_replica, storage_root, tmp_path, limit, expected
):
    server, _ = empiar_replica
    if limit is not None:
        set_pool_limit(tmp_path, "host_ebi", limit)
    assert ebi_transfers_at_once(server, tmp_path) == expected


def test_partitioned_crop_on_s3_equals_the_single_step_crop(
    hemibrain_replica, s3_replica, monkeypatch
):
    s3_replica.create_bucket("em-crops")
    crop = {"config": {"crop_size": 128, "seed": 5}}
    copier = CropCopy(block_voxels=64**3, workers=2)  # 8 blocks: one per partition

    def resources() -> dict:
        return {**default_resources(), "crop_copy": copier}

    monkeypatch.setenv("EM_ASSETS_ROOT", "s3://em-crops/single")
    single = materialize(
        [flyem_hemibrain], resources=resources(), run_config={"ops": {"flyem_hemibrain": crop}}
    )
    assert single.success

    monkeypatch.setenv("EM_ASSETS_ROOT", "s3://em-crops/parts")
    flyem_hemibrain_blocks, flyem_hemibrain_assembled = partitioned_crop(hemibrain_dataset.SPEC)
    keys = PARTITIONS.get_partition_keys()
    for key in keys:
        part = materialize(
            [flyem_hemibrain_blocks], partition_key=key, resources=resources(),
            run_config={"ops": {"flyem_hemibrain_blocks": crop}},
        )  # fmt: skip
        assert part.success
    assembled = materialize(
        [flyem_hemibrain_blocks, flyem_hemibrain_assembled], selection=["flyem_hemibrain"],
        resources=resources(), run_config={"ops": {"flyem_hemibrain": crop}},
    )  # fmt: skip
    assert assembled.success

    one = Manifest.model_validate_json(
        UPath("s3://em-crops/single/flyem_hemibrain.json").read_text()
    )
    many = Manifest.model_validate_json(
        UPath("s3://em-crops/parts/flyem_hemibrain.json").read_text()
    )
    assert many.crop.offset_voxels == one.crop.offset_voxels
    assert many.files[0].sha256 == one.files[0].sha256  # same voxels, chunk by chunk
    assert many.crop.statistics == one.crop.statistics
    assert many.crop.placement == one.crop.placement
    assert many.crop.rejected_candidates == one.crop.rejected_candidates
    assert many.crop.chunk_count == len(keys) == 8
    left = zarr.open_group(f"s3://em-crops/single/{one.array_path}", mode="r")["s0"][:]
    right = zarr.open_group(f"s3://em-crops/parts/{many.array_path}", mode="r")["s0"][:]
    np.testing.assert_array_equal(left, right)
    assert file_problems(UPath("s3://em-crops/parts"), many) == []
    # The assembling step yields the single step's WARN checks, with the same results.
    warned = {e.check_name: (e.passed, e.severity) for e in single.get_asset_check_evaluations()}
    assert set(warned) == {"hemibrain_voxel_size_documented", "hemibrain_crop_mostly_background"}
    assert {
        e.check_name: (e.passed, e.severity) for e in assembled.get_asset_check_evaluations()
    } == warned


def test_assembling_with_a_partition_missing_is_refused(hemibrain_replica, storage_root):
    config = HemibrainConfig(crop_size=128, seed=5)
    volume = HemibrainVolume(
        cloudpath=os.environ["EM_HEMIBRAIN_URL"],
        segmentation_cloudpath=os.environ["EM_HEMIBRAIN_SEGMENTATION_URL"],
    )
    source = hemibrain_dataset.open_source(volume, config)
    storage = StorageRoot(root=str(storage_root))
    copier = CropCopy(block_voxels=64**3, workers=1)
    log = logging.getLogger("test")
    shares = {
        str(k): copy_partition(hemibrain_dataset.DATASET, source, storage, copier, k, 8, log)
        for k in range(8)
        if k != 3
    }
    with pytest.raises(PartitionMismatchError, match="copied 7 of 8 chunks"):
        assemble(hemibrain_dataset.DATASET, source, shares, storage, copier, log)
