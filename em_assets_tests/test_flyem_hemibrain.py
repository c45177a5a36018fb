"""flyem_hemibrain against precomputed replicas (sharded and unsharded) served over HTTP."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import requests
import zarr
from cloudvolume import CloudVolume
from dagster import AssetCheckSeverity, DagsterInstance, materialize

from em_assets.datasets.flyem_hemibrain import flyem_hemibrain, hemibrain_crop_intact
from em_assets.resources import default_resources
from em_assets_tests.helpers import in_a_fresh_process, step_error
from em_assets_tests.replicas.http_server import Fault, ReplicaHTTPServer
from em_assets_tests.replicas.precomputed import (
    CHUNK,
    EDGE,
    LAYER_PATH,
    OFFSET,
    SIZE,
    SPARSE_CHUNK,
    SPARSE_TISSUE_X,
    tissue_volume,
    write_layer,
)

ASSETS = [flyem_hemibrain, hemibrain_crop_intact]
"""The WARN checks (voxel size documented, mostly background) are the asset's own."""


def run(raise_on_error: bool = True, **config):
    return materialize(
        ASSETS,
        resources=default_resources(),
        instance=DagsterInstance.ephemeral(),
        run_config={"ops": {"flyem_hemibrain": {"config": {"crop_size": 64, **config}}}},
        raise_on_error=raise_on_error,
    )


def stored(storage_root):
    manifest = json.loads((storage_root / "flyem_hemibrain.json").read_text())
    group = zarr.open_group(str(storage_root / manifest["array_path"]), mode="r")
    return manifest, group


def source_region(
    cloudpath: str, offset, size, mip: int = 0, fill_missing: bool = False
) -> np.ndarray:
    """The same region read independently through cloud-volume, as z, y, x."""
    volume = CloudVolume(cloudpath, mip=mip, fill_missing=fill_missing, progress=False)
    (x, y, z), (sx, sy, sz) = offset, size
    return np.asarray(volume[x : x + sx, y : y + sy, z : z + sz])[..., 0].transpose(2, 1, 0)


def test_sharded_crop_equals_the_source_region(hemibrain_replica, storage_root, monkeypatch):
    server, tree = hemibrain_replica
    result = run()
    assert result.success
    manifest, group = stored(storage_root)

    assert manifest["voxel_size_nm"] == [9.0, 9.0, 10.0]  # the replica's info, not 8 nm
    assert "scales[0].resolution" in manifest["voxel_size_source"]
    crop = manifest["crop"]
    assert crop["size_voxels"] == [64, 64, 64] and crop["seed"] == 2020
    offset = crop["offset_voxels"]
    assert all((offset[i] - OFFSET[i]) % CHUNK[i] == 0 for i in range(3))
    cropped = group["s0"][:]
    assert cropped.shape == (64, 64, 64) and cropped.dtype == np.uint8
    expected = source_region(tree["sharded"].cloudpath(server), offset, (64, 64, 64))
    np.testing.assert_array_equal(cropped, expected)
    # And it is the right place in the original volume (JPEG is lossy, so within noise).
    original = (
        tree["sharded"]
        .data[
            offset[0] - OFFSET[0] : offset[0] - OFFSET[0] + 64,
            offset[1] - OFFSET[1] : offset[1] - OFFSET[1] + 64,
            offset[2] - OFFSET[2] : offset[2] - OFFSET[2] + 64,
        ]
        .transpose(2, 1, 0)
    )
    assert np.abs(cropped.astype(int) - original).mean() < 4

    ngff = group.attrs["multiscales"][0]
    assert [a["name"] for a in ngff["axes"]] == ["z", "y", "x"]
    assert {a["unit"] for a in ngff["axes"]} == {"nanometer"}
    scale, translation = ngff["datasets"][0]["coordinateTransformations"]
    assert scale["scale"] == [10.0, 9.0, 9.0]
    assert translation["translation"] == [offset[2] * 10.0, offset[1] * 9.0, offset[0] * 9.0]

    stats = crop["statistics"]
    assert stats["minimum"] == cropped.min() and stats["maximum"] == cropped.max()
    assert stats["mean"] == pytest.approx(cropped.mean())
    assert stats["background_fraction"] <= 0.5
    # The crop and its label (default: the segmentation), each a verified zarr array.
    assert manifest["file_count"] == 2 and manifest["total_bytes"] > 0
    assert manifest["files"][1]["path"].endswith("/labels/segmentation/s0")
    assert manifest["files"][0]["kind"] == "zarr_array"


def test_documented_voxel_size_mismatch_warns_but_keeps_the_source_value(
    hemibrain_replica, storage_root
):
    result = run()
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    documented = evaluations["hemibrain_voxel_size_documented"]
    assert not documented.passed and documented.severity == AssetCheckSeverity.WARN
    assert documented.metadata["source_voxel_size"].value.startswith("9 × 9 × 10 nm")
    assert documented.metadata["documented_voxel_size"].value.startswith("8 × 8 × 8 nm")
    assert evaluations["hemibrain_crop_intact"].passed


def test_unsharded_layer_with_documented_resolution(hemibrain_replica, storage_root, monkeypatch):
    server, tree = hemibrain_replica
    monkeypatch.setenv("EM_HEMIBRAIN_URL", tree["unsharded"].cloudpath(server))
    result = run(seed=7, labels=[])  # the replica's labels are on the sharded layer's grid
    manifest, group = stored(storage_root)
    assert manifest["voxel_size_nm"] == [8.0, 8.0, 8.0]
    expected = source_region(
        tree["unsharded"].cloudpath(server), manifest["crop"]["offset_voxels"], (64,) * 3
    )
    np.testing.assert_array_equal(group["s0"][:], expected)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evaluations["hemibrain_voxel_size_documented"].passed


def test_same_seed_same_crop_and_crops_avoid_padding(hemibrain_replica, storage_root):
    offsets = {}
    for seed in (1, 2, 3, 1):
        run(seed=seed)
        manifest, _ = stored(storage_root)
        crop = manifest["crop"]
        offsets.setdefault(seed, crop["offset_voxels"])
        assert crop["offset_voxels"] == offsets[seed]
        # Padding starts at 60 % of the width: accepted crops must reach into tissue.
        assert crop["offset_voxels"][0] - OFFSET[0] < int(SIZE[0] * 0.6)
        assert crop["statistics"]["background_fraction"] <= 0.5
    assert len({tuple(v) for v in offsets.values()}) > 1


def test_default_candidate_straddling_the_tissue_edge_is_rejected_on_the_probe(
    hemibrain_replica, storage_root, monkeypatch
):
    """Seed 2020's first 128-voxel candidate spans x 0-128, tissue from x 90: 70 % padding,
    but every 8-voxel tile of the old probe that touched the edge counted as tissue."""
    server, tree = hemibrain_replica
    monkeypatch.setenv("EM_HEMIBRAIN_URL", tree["edge"].cloudpath(server))
    result = run(crop_size=128, labels=[])  # labels are on the sharded layer's grid
    manifest, group = stored(storage_root)
    crop = manifest["crop"]
    assert crop["statistics"]["background_fraction"] <= 0.5
    assert crop["offset_voxels"][0] - OFFSET[0] + 128 > EDGE[0] + 64  # mostly tissue
    first = crop["rejected_candidates"][0]
    assert first["offset_voxels"][0] == OFFSET[0]
    assert first["judged_on"].startswith("coarse probe (mip 3")  # no copy was wasted on it
    assert first["background_fraction"] == pytest.approx(0.70, abs=0.05)
    assert "over the 50% limit" in first["reason"]
    assert "confirmed at full resolution" in crop["placement"]
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    background = evaluations["hemibrain_crop_mostly_background"]
    assert background.passed
    measured = background.metadata["background_fraction"].value
    assert measured == pytest.approx(crop["statistics"]["background_fraction"], abs=1e-4)
    np.testing.assert_array_equal(
        group["s0"][:],
        source_region(tree["edge"].cloudpath(server), crop["offset_voxels"], (128,) * 3),
    )


def test_mostly_background_crop_warns_when_no_better_candidate_exists(
    hemibrain_replica, storage_root, monkeypatch
):
    server, tree = hemibrain_replica
    monkeypatch.setenv("EM_HEMIBRAIN_URL", tree["sparse"].cloudpath(server))
    result = run(crop_size=128, labels=[])  # labels are on the sharded layer's grid
    assert result.success  # kept and said so, not failed: a person decides
    manifest, _ = stored(storage_root)
    crop = manifest["crop"]
    fraction = crop["statistics"]["background_fraction"]
    assert fraction > 0.5
    assert crop["offset_voxels"][0] - OFFSET[0] == 128  # the least empty of x 0, 64, 128
    assert "least empty" in crop["placement"]
    rejected = crop["rejected_candidates"]
    assert len(rejected) >= 2 and all(c["background_fraction"] > 0.5 for c in rejected)
    assert crop["offset_voxels"] not in [c["offset_voxels"] for c in rejected]
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    background = evaluations["hemibrain_crop_mostly_background"]
    assert not background.passed and background.severity == AssetCheckSeverity.WARN
    assert background.metadata["background_fraction"].value == pytest.approx(fraction, abs=1e-4)
    assert "crop is mostly background" in background.description
    assert evaluations["hemibrain_crop_intact"].passed


def test_crop_at_a_coarser_mip(hemibrain_replica, storage_root):
    server, tree = hemibrain_replica
    run(mip=1, crop_size=48)
    manifest, group = stored(storage_root)
    assert manifest["voxel_size_nm"] == [18.0, 18.0, 20.0]
    assert manifest["crop"]["scale"].startswith("mip 1")
    expected = source_region(
        tree["sharded"].cloudpath(server), manifest["crop"]["offset_voxels"], (48,) * 3, mip=1
    )
    np.testing.assert_array_equal(group["s0"][:], expected)


def test_forbidden_shard_fails_without_zeros(hemibrain_replica, storage_root):
    server, _ = hemibrain_replica
    for shard in range(4):
        server.inject(Fault("status", status=403, times=-1), f"/{LAYER_PATH}/9_9_10/{shard}.shard")
    result = run(raise_on_error=False)
    assert not result.success
    error = step_error(result)
    assert "PERMISSION_DENIED" in error and "refusing to fill it with zeros" in error
    assert not (storage_root / "flyem_hemibrain.json").exists()


@pytest.mark.parametrize(
    ("config", "complaint"),
    [
        ({"crop_size": 300}, "crop_size=300 does not fit mip 0"),
        ({"mip": 5}, "mip 5 does not exist; this volume has mips 0-2"),
    ],
)
def test_bad_config_fails_before_reading_voxels(hemibrain_replica, storage_root, config, complaint):
    server, _ = hemibrain_replica
    result = run(raise_on_error=False, **config)
    assert complaint in step_error(result)
    assert [p for _, p, _ in server.state.requests if not p.endswith("/info")] == []


def test_non_positive_crop_size_is_a_config_error(hemibrain_replica, storage_root):
    with pytest.raises(Exception, match="crop_size"):
        run(crop_size=0)


@pytest.fixture(scope="module")
def sparse_tree(tmp_path_factory):
    """Layers whose all-zero chunks were never written (at every mip), sharded at every mip
    and unsharded, each beside the same data written in full."""
    root = tmp_path_factory.mktemp("sparse")
    data = tissue_volume(tissue_x=SPARSE_TISSUE_X)
    layers = {}
    for name, sharded in (("sharded", True), ("unsharded", False)):
        for sparse in (True, False):
            key = name if sparse else f"{name}_full"
            layers[key] = write_layer(
                root / key / LAYER_PATH, (8, 8, 8), sharded, data, SPARSE_CHUNK, sparse=sparse
            )
    return root, layers


@pytest.fixture
def sparse_replica(sparse_tree, storage_root):
    root, layers = sparse_tree
    server = ReplicaHTTPServer()
    server.state.directory = root
    server.start()
    yield server, layers
    server.stop()


def all_zero_chunks(region_zyx: np.ndarray, chunk=SPARSE_CHUNK) -> int:
    """Chunks of a chunk-aligned region holding only zeros: those a sparse writer leaves out."""
    cx, cy, cz = chunk
    shape = region_zyx.shape
    return sum(
        not region_zyx[z : z + cz, y : y + cy, x : x + cx].any()
        for z in range(0, shape[0], cz)
        for y in range(0, shape[1], cy)
        for x in range(0, shape[2], cx)
    )


# Crop sizes that, on the chunk grid, always reach into the never-written padding (x >= 50 %).
SPARSE_CROPS = {0: 192, 1: 96, 2: 48}


@pytest.mark.parametrize("layout", ["sharded", "unsharded"])
@pytest.mark.parametrize("mip", [0, 1, 2])
@pytest.mark.parametrize("seed", [4, 9])
def test_chunks_never_written_read_as_zeros_and_are_counted(
    sparse_replica, storage_root, monkeypatch, layout, mip, seed
):
    server, layers = sparse_replica
    sparse = layers[layout].cloudpath(server)
    assert layers[layout].sharded == (layout == "sharded")
    monkeypatch.setenv("EM_HEMIBRAIN_URL", sparse)
    size = SPARSE_CROPS[mip]
    result = run(mip=mip, crop_size=size, seed=seed, labels=[])  # the EM layer alone
    assert result.success
    manifest, group = stored(storage_root)
    offset = manifest["crop"]["offset_voxels"]
    cropped = group["s0"][:]
    # The source written in full, read independently: zeros where chunks are absent.
    full = source_region(layers[f"{layout}_full"].cloudpath(server), offset, (size,) * 3, mip)
    np.testing.assert_array_equal(cropped, full)
    # And cloud-volume's own reading of the sparse layer agrees.
    np.testing.assert_array_equal(
        cropped, source_region(sparse, offset, (size,) * 3, mip, fill_missing=True)
    )
    absent = manifest["crop"]["absent_chunks"]
    assert absent == all_zero_chunks(full) > 0
    assert manifest["crop"]["statistics"]["background_fraction"] <= 0.5  # placement saw zeros


def test_forbidden_chunk_in_a_sparse_layer_still_fails(sparse_replica, storage_root, monkeypatch):
    server, layers = sparse_replica
    monkeypatch.setenv("EM_HEMIBRAIN_URL", layers["unsharded"].cloudpath(server))
    chunks = layers["unsharded"].directory / "8_8_8"
    for chunk in chunks.iterdir():
        server.inject(
            Fault("status", status=403, times=-1),
            f"/unsharded/{LAYER_PATH}/8_8_8/{chunk.name}",
        )
    result = run(raise_on_error=False, crop_size=SPARSE_CROPS[0], labels=[])
    error = step_error(result)
    assert "PERMISSION_DENIED" in error and "refusing to fill it with zeros" in error
    assert not (storage_root / "flyem_hemibrain.json").exists()


def test_undecodable_chunk_fails_without_zeros(sparse_replica, storage_root, monkeypatch):
    server, layers = sparse_replica
    monkeypatch.setenv("EM_HEMIBRAIN_URL", layers["unsharded"].cloudpath(server))
    for chunk in (layers["unsharded"].directory / "8_8_8").iterdir():
        server.inject(
            Fault("body", body=b"not a JPEG", content_type="application/octet-stream", times=-1),
            f"/unsharded/{LAYER_PATH}/8_8_8/{chunk.name}",
        )
    result = run(raise_on_error=False, crop_size=SPARSE_CROPS[0], labels=[])
    assert "refusing to fill it with zeros" in step_error(result)
    assert not (storage_root / "flyem_hemibrain.json").exists()


HEMIBRAIN_IN_A_FRESH_PROCESS = """
import json, sys
from dagster import DagsterInstance, materialize
from em_assets.datasets.flyem_hemibrain import flyem_hemibrain
from em_assets.resources import default_resources
result = materialize([flyem_hemibrain], resources=default_resources(),
                     instance=DagsterInstance.ephemeral(),
                     run_config={"ops": {"flyem_hemibrain": {"config": {"crop_size": 64,
                                                                       "labels": []}}}})
print(json.dumps({"success": result.success, "cloudvolume": "cloudvolume" in sys.modules}))
"""


def hemibrain_in_a_fresh_process(storage_root) -> tuple[bool, dict]:
    """The asset alone in a process that has imported nothing yet (pytest's has
    cloud-volume): whether it imported cloud-volume, and the manifest it stored."""
    seen = in_a_fresh_process(HEMIBRAIN_IN_A_FRESH_PROCESS)
    return seen["cloudvolume"], json.loads((storage_root / "flyem_hemibrain.json").read_text())


def test_a_byte_identical_info_is_not_parsed_again_any_other_is_read_by_cloud_volume(
    hemibrain_replica, storage_root
):
    """cloud-volume reads the layer's `info` whenever it has to be read; an unchanged
    refresh that finds the very bytes it recorded does not start it. Bytes that differ,
    even only in layout, are read by cloud-volume, and a changed `info` is a new version."""
    server, _ = hemibrain_replica
    info_path = f"/{LAYER_PATH}/info"
    served = requests.get(server.url(info_path), timeout=10).content

    imported, first = hemibrain_in_a_fresh_process(storage_root)
    assert imported
    assert first["source_document"]["sha256"] == hashlib.sha256(served).hexdigest()
    assert first["source_document"]["parsed"] == json.loads(served)

    imported, again = hemibrain_in_a_fresh_process(storage_root)
    assert not imported
    assert again["source_version"] == first["source_version"]
    assert (again["array_path"], again["retrieved_at"]) == (
        first["array_path"],
        first["retrieved_at"],
    )

    relaid = json.dumps(json.loads(served), indent=1).encode()  # same JSON, other bytes
    server.put(info_path, relaid)
    imported, third = hemibrain_in_a_fresh_process(storage_root)
    assert imported
    assert third["source_version"] == first["source_version"]
    assert third["source_document"]["sha256"] == hashlib.sha256(relaid).hexdigest()

    changed = {**json.loads(served), "note": "a changed info"}
    server.put(info_path, json.dumps(changed).encode())
    imported, fourth = hemibrain_in_a_fresh_process(storage_root)
    assert imported
    assert fourth["source_version"] != first["source_version"]
    assert fourth["source_document"]["parsed"] == changed
