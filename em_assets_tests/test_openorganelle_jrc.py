"""openorganelle_jrc against an OME-Zarr pyramid in moto S3, read anonymously without listing."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import zarr
from dagster import AssetCheckSeverity, DagsterInstance, materialize

from em_assets.datasets.openorganelle_jrc import openorganelle_crop_intact, openorganelle_jrc
from em_assets.resources import default_resources
from em_assets_tests.helpers import step_error
from em_assets_tests.replicas.openorganelle import (
    BUCKET,
    CHUNKS_ZYX,
    CONTAINER,
    EM_GROUP,
    SHAPE_ZYX,
)

ASSETS = [openorganelle_jrc, openorganelle_crop_intact]
"""The WARN checks (voxel size documented, mostly background) are the asset's own."""


def run(raise_on_error: bool = True, **config):
    return materialize(
        ASSETS,
        resources=default_resources(),
        instance=DagsterInstance.ephemeral(),
        run_config={"ops": {"openorganelle_jrc": {"config": {"crop_size": 64, **config}}}},
        raise_on_error=raise_on_error,
    )


def stored(storage_root):
    manifest = json.loads((storage_root / "openorganelle_jrc.json").read_text())
    group = zarr.open_group(str(storage_root / manifest["array_path"]), mode="r")
    return manifest, group


def region(volume: np.ndarray, offset_xyz, size: int) -> np.ndarray:
    x, y, z = offset_xyz
    return volume[z : z + size, y : y + size, x : x + size]


def test_crop_equals_the_source_region_with_ngff_from_the_source(
    openorganelle_replica, storage_root
):
    result = run()
    assert result.success
    manifest, group = stored(storage_root)
    assert manifest["voxel_size_nm"] == [7.5, 7.5, 8.5]  # the replica's multiscales, x y z
    assert "multiscales" in manifest["voxel_size_source"]
    offset = manifest["crop"]["offset_voxels"]
    assert all(offset[i] % CHUNKS_ZYX[::-1][i] == 0 for i in range(3))
    np.testing.assert_array_equal(
        group["s0"][:], region(openorganelle_replica.levels[0], offset, 64)
    )

    transforms = group.attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"]
    scale, translation = openorganelle_replica.scales[0], openorganelle_replica.translations[0]
    assert transforms[0]["scale"] == list(scale)
    expected = [translation[i] + offset[2 - i] * scale[i] for i in range(3)]
    assert transforms[1]["translation"] == pytest.approx(expected)
    assert manifest["crop"]["statistics"]["background_fraction"] <= 0.5

    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evaluations["openorganelle_crop_intact"].passed
    documented = evaluations["openorganelle_voxel_size_documented"]
    assert not documented.passed and documented.severity == AssetCheckSeverity.WARN
    background = evaluations["openorganelle_crop_mostly_background"]
    assert background.passed and background.severity == AssetCheckSeverity.WARN
    assert background.metadata["background_fraction"].value == pytest.approx(
        manifest["crop"]["statistics"]["background_fraction"], abs=1e-4
    )


def test_coarser_scale_carries_its_half_voxel_translation(openorganelle_replica, storage_root):
    run(scale="s1", crop_size=32)
    manifest, group = stored(storage_root)
    assert manifest["voxel_size_nm"] == [15.0, 15.0, 17.0]
    offset = manifest["crop"]["offset_voxels"]
    np.testing.assert_array_equal(
        group["s0"][:], region(openorganelle_replica.levels[1], offset, 32)
    )
    translation = group.attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"][1]
    scale, shift = openorganelle_replica.scales[1], openorganelle_replica.translations[1]
    assert translation["translation"] == pytest.approx(
        [shift[i] + offset[2 - i] * scale[i] for i in range(3)]
    )


def test_missing_chunk_reads_as_fill_value_and_the_empty_copy_is_placed_again(
    openorganelle_replica, s3_replica, storage_root
):
    """A chunk absent at s0 is fill value (zarr's rule), so the crop that is exactly that
    chunk is empty; the coarse levels still show tissue there, so only the copy can tell.
    It is rejected at full resolution and the next seeded candidate is copied instead."""
    run()
    first = stored(storage_root)[0]["crop"]
    assert first["absent_chunks"] == 0
    offset = first["offset_voxels"]
    cx, cy, cz = (offset[i] // CHUNKS_ZYX[2 - i] for i in range(3))
    key = f"{CONTAINER}/{EM_GROUP}/s0/{cz}/{cy}/{cx}"
    s3_replica.client().delete_object(Bucket=BUCKET, Key=key)
    shutil.rmtree(storage_root)  # a fresh crop, not the verified stored one
    result = run()
    manifest, group = stored(storage_root)
    crop = manifest["crop"]
    rejected = crop["rejected_candidates"][-1]
    assert rejected["offset_voxels"] == offset  # same seed, same first choice: now empty
    assert rejected["judged_on"] == "full resolution, after the copy"
    assert rejected["background_fraction"] == 1.0
    assert crop["offset_voxels"] != offset
    assert crop["statistics"]["background_fraction"] <= 0.5
    np.testing.assert_array_equal(
        group["s0"][:], region(openorganelle_replica.levels[0], crop["offset_voxels"], 64)
    )
    stores = list((storage_root / "openorganelle_jrc").iterdir())
    assert [s.name for s in stores] == [manifest["array_path"].rsplit("/", 1)[-1]]
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evaluations["openorganelle_crop_mostly_background"].passed


def all_zero_chunks(volume: np.ndarray, offset_xyz, size: int) -> int:
    """Chunks of the crop region holding only zeros: the ones zarr never wrote."""
    crop = region(volume, offset_xyz, size)
    step = CHUNKS_ZYX[0]
    return sum(
        not crop[z : z + step, y : y + step, x : x + step].any()
        for z in range(0, crop.shape[0], step)
        for y in range(0, crop.shape[1], step)
        for x in range(0, crop.shape[2], step)
    )


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_chunks_never_written_are_counted(openorganelle_replica, storage_root, seed):
    """zarr writes no chunk that is all fill value: the replica's padding has none."""
    run(crop_size=160, seed=seed)
    manifest, group = stored(storage_root)
    offset = manifest["crop"]["offset_voxels"]
    expected = region(openorganelle_replica.levels[0], offset, 160)
    np.testing.assert_array_equal(group["s0"][:], expected)
    assert manifest["crop"]["absent_chunks"] == all_zero_chunks(
        openorganelle_replica.levels[0], offset, 160
    )


def test_forbidden_chunk_fails_without_zeros(openorganelle_replica, s3_replica, storage_root):
    client = s3_replica.client()
    policy = json.loads(client.get_bucket_policy(Bucket=BUCKET)["Policy"])
    policy["Statement"].append(
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["s3:GetObject"],
            # chunk keys only (z/y/x): the metadata stays readable
            "Resource": [
                f"arn:aws:s3:::{BUCKET}/{CONTAINER}/{EM_GROUP}/s0/{z}/*" for z in range(3)
            ],
        }
    )
    client.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))
    result = run(raise_on_error=False)
    error = step_error(result)
    assert "PERMISSION_DENIED" in error and "refusing to fill it with zeros" in error
    assert not (storage_root / "openorganelle_jrc.json").exists()


@pytest.mark.parametrize(
    ("config", "complaint"),
    [
        ({"scale": "s9"}, "scale 's9' is not in"),
        ({"crop_size": max(SHAPE_ZYX) + 1}, f"crop_size={max(SHAPE_ZYX) + 1} does not fit s0"),
    ],
)
def test_bad_config_is_explained(openorganelle_replica, storage_root, config, complaint):
    result = run(raise_on_error=False, **config)
    message = step_error(result)
    assert complaint in message
    if "scale" in config:
        assert "available: s0, s1, s2" in message
    assert not (storage_root / "openorganelle_jrc").exists()
