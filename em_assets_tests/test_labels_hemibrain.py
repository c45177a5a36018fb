"""Hemibrain labels stored with the crop: aligned, uint64, checked by the blocking check."""

from __future__ import annotations

import json

import numpy as np
import zarr
from cloudvolume import CloudVolume
from dagster import AssetSelection, DagsterInstance, materialize
from upath import UPath

from em_assets.crops.alignment import labels_aligned
from em_assets.datasets.flyem_hemibrain import (
    flyem_hemibrain,
    hemibrain_crop_intact,
    hemibrain_labels_aligned,
)
from em_assets.manifest.model import Manifest
from em_assets.resources import default_resources
from em_assets_tests.helpers import step_error

ASSETS = [flyem_hemibrain, hemibrain_crop_intact, hemibrain_labels_aligned]


def run(raise_on_error: bool = True, **config):
    return materialize(
        ASSETS,
        resources=default_resources(),
        instance=DagsterInstance.ephemeral(),
        run_config={"ops": {"flyem_hemibrain": {"config": {"crop_size": 64, **config}}}},
        raise_on_error=raise_on_error,
    )


def run_alignment_check():
    """The blocking check alone, against what is stored."""
    return materialize(
        ASSETS,
        resources=default_resources(),
        instance=DagsterInstance.ephemeral(),
        selection=AssetSelection.checks(hemibrain_labels_aligned),
        raise_on_error=False,
    )


def stored(storage_root):
    manifest = json.loads((storage_root / "flyem_hemibrain.json").read_text())
    group = zarr.open_group(str(storage_root / manifest["array_path"]), mode="r")
    return manifest, group


def transforms(attrs) -> tuple[list[float], list[float]]:
    scale, translation = attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"]
    return scale["scale"], translation["translation"]


def source_region(cloudpath: str, offset, size) -> np.ndarray:
    """The region read independently through cloud-volume, as z, y, x."""
    volume = CloudVolume(cloudpath, mip=0, fill_missing=False, progress=False)
    (x, y, z), (sx, sy, sz) = offset, size
    return np.asarray(volume[x : x + sx, y : y + sy, z : z + sz])[..., 0].transpose(2, 1, 0)


def check_passed(result, check) -> bool:
    name = next(iter(check.check_specs)).name
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return evaluation.passed


def test_default_config_stores_the_segmentation_on_the_crop(
    hemibrain_replica, hemibrain_labels, storage_root
):
    server, _ = hemibrain_replica
    result = run()
    assert result.success
    assert check_passed(result, hemibrain_labels_aligned)
    manifest, group = stored(storage_root)
    offset = manifest["crop"]["offset_voxels"]

    assert group["labels"].attrs["labels"] == ["segmentation"]
    label = group["labels/segmentation"]
    assert label.attrs["image-label"] == {"version": "0.4", "source": {"image": "../../"}}
    assert transforms(label.attrs) == transforms(group.attrs)  # same scale and translation
    data = label["s0"][:]
    assert data.dtype == np.uint64 and data.shape == (64, 64, 64)
    layer = hemibrain_labels["segmentation"]
    expected = source_region(
        layer.cloudpath(server.base_url, server.state.directory), offset, (64,) * 3
    )
    np.testing.assert_array_equal(data, expected)
    # And it is the replica's own ids at that place (ids above 2**32 survive).
    x, y, z = (offset[i] - layer.offset[i] for i in range(3))
    truth = layer.data[x : x + 64, y : y + 64, z : z + 64].transpose(2, 1, 0)
    np.testing.assert_array_equal(data, truth)
    assert data.max() > 2**32

    (recorded,) = manifest["labels"]
    assert recorded["name"] == "segmentation" and recorded["treatment"] == "copied"
    assert recorded["source_url"] == layer.cloudpath(server.base_url, server.state.directory)
    assert recorded["dtype"] == "uint64" and recorded["shape"] == [64, 64, 64]
    assert recorded["offset_voxels"] == offset
    assert recorded["voxel_size_nm"] == manifest["voxel_size_nm"]
    assert recorded["translation_nm"] == manifest["crop"]["translation_nm"]
    assert recorded["nonzero_fraction"] == np.count_nonzero(truth) / truth.size
    # The label array is one of the crop's verified files.
    assert f"{recorded['path']}/s0" in [f["path"] for f in manifest["files"]]


def test_a_coarser_layer_keeps_its_own_resolution(
    hemibrain_replica, hemibrain_labels, storage_root
):
    result = run(labels=["segmentation", "mito"])
    assert result.success
    assert check_passed(result, hemibrain_labels_aligned)
    manifest, group = stored(storage_root)
    offset = manifest["crop"]["offset_voxels"]
    assert group["labels"].attrs["labels"] == ["segmentation", "mito"]

    mito = group["labels/mito"]
    em_scale, em_translation = transforms(group.attrs)
    scale, translation = transforms(mito.attrs)
    assert scale == [2 * s for s in em_scale]  # its own voxel size, not resampled
    assert translation == em_translation  # the same physical box
    data = mito["s0"][:]
    assert data.shape == (32, 32, 32) and data.dtype == np.uint64
    layer = hemibrain_labels["mito"]
    x, y, z = (offset[i] // 2 - layer.offset[i] for i in range(3))
    np.testing.assert_array_equal(
        data, layer.data[x : x + 32, y : y + 32, z : z + 32].transpose(2, 1, 0)
    )
    recorded = {label["name"]: label for label in manifest["labels"]}
    assert recorded["mito"]["treatment"] == "native_resolution"
    assert "not resampled" in recorded["mito"]["description"]
    assert recorded["mito"]["offset_voxels"] == [o // 2 for o in offset]


def test_no_labels_when_none_are_asked_for(hemibrain_replica, storage_root):
    assert run(labels=[]).success
    manifest, group = stored(storage_root)
    assert manifest["labels"] == [] and "labels" not in group


def test_an_unknown_layer_is_refused_before_any_transfer(hemibrain_replica, storage_root):
    result = run(raise_on_error=False, labels=["synapses"])
    assert not result.success
    message = step_error(result)
    assert "synapses" in message and "segmentation" in message and "mito" in message
    assert not (storage_root / "flyem_hemibrain").exists()


def test_changing_the_labels_copies_the_crop_again(hemibrain_replica, storage_root):
    assert run(labels=[]).success
    assert run().success  # same crop, but now with its segmentation
    manifest, group = stored(storage_root)
    assert [label["name"] for label in manifest["labels"]] == ["segmentation"]
    assert "segmentation" in group["labels"]


def shift_translation(group_path, axis: int, by: float) -> None:
    group = zarr.open_group(str(group_path), mode="r+")
    multiscales = group.attrs["multiscales"]
    transform = multiscales[0]["datasets"][0]["coordinateTransformations"][1]
    transform["translation"][axis] += by
    group.attrs["multiscales"] = multiscales


def test_a_shifted_label_fails_the_blocking_check(hemibrain_replica, storage_root):
    assert run().success
    manifest, _ = stored(storage_root)
    label_path = storage_root / manifest["labels"][0]["path"]
    voxel_x = manifest["voxel_size_nm"][0]
    shift_translation(label_path, 2, voxel_x)  # one voxel along x (zyx order in NGFF)

    result = run_alignment_check()
    assert not check_passed(result, hemibrain_labels_aligned)
    problems = labels_aligned(UPath(storage_root), Manifest.model_validate(manifest))
    assert "x extent" in problems.metadata["problems"].value


def test_shifted_voxels_under_the_right_metadata_fail_too(hemibrain_replica, storage_root):
    """The metadata can be right and the voxels still shifted (x, y, z read as z, y, x, an
    offset applied twice): the values at random positions catch it."""
    assert run().success
    manifest, _ = stored(storage_root)
    array = zarr.open_array(str(storage_root / manifest["labels"][0]["path"] / "s0"), mode="r+")
    array[:] = np.roll(array[:], 8, axis=1)  # one body along y

    result = labels_aligned(UPath(storage_root), Manifest.model_validate(manifest))
    assert not result.passed
    assert "value differs" in result.metadata["problems"].value


def test_a_label_that_would_need_resampling_is_refused_before_any_transfer(
    hemibrain_replica, storage_root, monkeypatch
):
    """The unsharded EM replica is 8 nm; the segmentation is 9 × 9 × 10 nm: no whole ratio."""
    server, tree = hemibrain_replica
    monkeypatch.setenv("EM_HEMIBRAIN_URL", tree["unsharded"].cloudpath(server))
    result = run(raise_on_error=False)
    assert not result.success
    assert "without resampling" in step_error(result)
    assert not (storage_root / "flyem_hemibrain").exists()


def test_a_label_at_a_non_whole_ratio_or_another_dtype_fails(hemibrain_replica, storage_root):
    assert run().success
    manifest, _ = stored(storage_root)
    recorded = Manifest.model_validate(manifest)
    label_path = storage_root / manifest["labels"][0]["path"]
    group = zarr.open_group(str(label_path), mode="r+")
    original = group.attrs["multiscales"]

    stretched = json.loads(json.dumps(original))
    scale = stretched[0]["datasets"][0]["coordinateTransformations"][0]["scale"]
    stretched[0]["datasets"][0]["coordinateTransformations"][0]["scale"] = [
        v * 0.75 for v in scale
    ]  # 0.75 of the EM's voxel: inside the box, but no whole ratio
    group.attrs["multiscales"] = stretched
    result = labels_aligned(UPath(storage_root), recorded)
    assert not result.passed and "whole multiple" in result.metadata["problems"].value

    group.attrs["multiscales"] = original
    assert labels_aligned(UPath(storage_root), recorded).passed
    narrowed = group["s0"][:].astype(np.uint32)  # what a uint32 shortcut would store
    del group["s0"]
    group.create_array("s0", data=narrowed, chunks=(64, 64, 64))
    result = labels_aligned(UPath(storage_root), recorded)
    assert not result.passed and "dtype uint32" in result.metadata["problems"].value
