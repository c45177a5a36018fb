"""openorganelle_jrc with a CellMap ground-truth crop: the EM placed around it, its classes
stored as aligned NGFF labels, "unknown" never turned into background."""

from __future__ import annotations

import json

import numpy as np
import zarr
from dagster import DagsterInstance, materialize

from em_assets.datasets.openorganelle_jrc import (
    openorganelle_crop_intact,
    openorganelle_jrc,
    openorganelle_labels_aligned,
)
from em_assets.resources import default_resources
from em_assets_tests.helpers import step_error
from em_assets_tests.replicas.groundtruth import CROPS, UNKNOWN
from em_assets_tests.replicas.openorganelle import CHUNKS_ZYX, SCALE_ZYX

ASSETS = [openorganelle_jrc, openorganelle_crop_intact, openorganelle_labels_aligned]


def run(raise_on_error: bool = True, **config):
    return materialize(
        ASSETS,
        resources=default_resources(),
        instance=DagsterInstance.ephemeral(),
        run_config={"ops": {"openorganelle_jrc": {"config": config}}},
        raise_on_error=raise_on_error,
    )


def aligned(result) -> bool:
    (evaluation,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "openorganelle_labels_aligned"
    ]
    return evaluation.passed


def stored(storage_root):
    manifest = json.loads((storage_root / "openorganelle_jrc.json").read_text())
    return manifest, zarr.open_group(str(storage_root / manifest["array_path"]), mode="r")


def transforms(attrs):
    scale, translation = attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"]
    return scale["scale"], translation["translation"]


def expected_label(levels, attrs, shape) -> np.ndarray:
    """What a label of `shape` with these transforms must hold: the source class at the same
    world coordinate, "unknown" outside the annotated box (computed from the replica)."""
    scale, translation = transforms(attrs)
    source = next(level for level in levels if np.allclose(scale, level.scale))
    axes = [
        np.rint(
            (translation[i] + np.arange(shape[i]) * scale[i] - source.translation[i])
            / source.scale[i]
        ).astype(int)
        for i in range(3)
    ]
    z, y, x = np.meshgrid(*axes, indexing="ij")
    inside = (
        (z >= 0)
        & (z < source.data.shape[0])
        & (y >= 0)
        & (y < source.data.shape[1])
        & (x >= 0)
        & (x < source.data.shape[2])
    )
    out = np.full(shape, UNKNOWN, dtype=np.uint8)
    out[inside] = source.data[z[inside], y[inside], x[inside]]
    return out


def test_crop124_classes_are_stored_on_the_em_grid(groundtruth_replica, storage_root):
    _, truth = groundtruth_replica
    result = run(groundtruth_crop="crop124")
    assert result.success and aligned(result)
    manifest, group = stored(storage_root)

    # The EM crop contains the annotated box and sits on the EM chunk grid.
    first, extent, classes, _ = CROPS["crop124"]
    offset_xyz, size_xyz = manifest["crop"]["offset_voxels"], manifest["crop"]["size_voxels"]
    for i, axis in enumerate((2, 1, 0)):  # x, y, z -> index into z, y, x
        assert offset_xyz[i] % CHUNKS_ZYX[axis] == 0
        assert offset_xyz[i] <= first[axis] - 1  # the fine voxels reach a quarter voxel lower
        assert offset_xyz[i] + size_xyz[i] >= first[axis] + extent[axis]
    assert "crop124" in manifest["crop"]["placement"]

    assert group["labels"].attrs["labels"] == list(classes)
    em_scale, em_translation = transforms(group.attrs)
    for name in classes:
        label = group[f"labels/{name}"]
        assert transforms(label.attrs) == (em_scale, em_translation)  # s1 is on the EM grid
        data = label["s0"][:]
        assert data.shape == group["s0"].shape and data.dtype == np.uint8
        np.testing.assert_array_equal(
            data, expected_label(truth["crop124"][name], label.attrs, data.shape)
        )
        assert (data == UNKNOWN).any() and (data == 0).any()  # outside the box: 255, never 0
    recorded = {label["name"]: label for label in manifest["labels"]}
    assert recorded["mito"]["unknown_value"] == UNKNOWN
    assert recorded["mito"]["outside_value"] == UNKNOWN
    assert recorded["mito"]["source_level"] == "s1"
    assert "outside the source's extent hold 255 (unknown)" in recorded["mito"]["description"]
    assert 0 < recorded["mito"]["unknown_fraction"] < 1


def test_a_crop_finer_than_the_em_keeps_its_resolution(groundtruth_replica, storage_root):
    _, truth = groundtruth_replica
    result = run(groundtruth_crop="crop1038")
    assert result.success and aligned(result)
    manifest, group = stored(storage_root)
    label = group["labels/mito"]
    scale, translation = transforms(label.attrs)
    assert scale == [s / 2 for s in SCALE_ZYX]  # its own 2x finer voxels, not resampled
    em_scale, em_translation = transforms(group.attrs)
    shape = label["s0"].shape
    for i in range(3):  # within the EM crop's physical box
        assert translation[i] >= em_translation[i]
        assert translation[i] + shape[i] * scale[i] <= (
            em_translation[i] + group["s0"].shape[i] * em_scale[i] + 1e-6
        )
    np.testing.assert_array_equal(
        label["s0"][:], expected_label(truth["crop1038"]["mito"], label.attrs, shape)
    )
    (recorded,) = manifest["labels"]
    assert recorded["treatment"] == "native_resolution" and recorded["source_level"] == "s0"


def test_an_unknown_crop_fails_before_any_transfer_naming_the_crops(
    groundtruth_replica, storage_root
):
    result = run(raise_on_error=False, groundtruth_crop="crop9")
    assert not result.success
    message = step_error(result)
    assert "crop9" in message and "crop124" in message and "crop1038" in message
    assert not (storage_root / "openorganelle_jrc").exists()
