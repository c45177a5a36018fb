"""Every dataset as OME-Zarr images, end to end against the replicas; `open_image`;
the crops' Neuroglancer links."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
import tifffile
from dagster import DagsterInstance, materialize
from upath import UPath

from em_assets.datasets.empiar_11759 import empiar_11759
from em_assets.datasets.epfl_hippocampus import epfl_hippocampus
from em_assets.datasets.flyem_hemibrain import flyem_hemibrain
from em_assets.datasets.idr_0086 import idr_0086
from em_assets.datasets.openorganelle_jrc import openorganelle_jrc
from em_assets.images.check import images_intact
from em_assets.images.convert import write_image
from em_assets.images.file_datasets import labelled_stacks
from em_assets.images.open import ImageNotMaterializedError, open_image
from em_assets.manifest.model import ImageEntry, Manifest
from em_assets.report.findings import build_report
from em_assets.report.render import comparison_table, markdown
from em_assets.resources import default_resources
from em_assets_tests.replicas.ebi import IDR_XY, IDR_XZ
from em_assets_tests.replicas.empiar import SLICE_SHAPE, SLICES
from em_assets_tests.replicas.epfl import EPFL_DIRECTORY
from em_assets_tests.test_report_findings import manifest

SMALL_CROP = {"config": {"crop_size": 64}}


def run(asset, config=None):
    result = materialize(
        [asset],
        resources=default_resources(),
        instance=DagsterInstance.ephemeral(),
        run_config={"ops": {asset.key.path[-1]: config}} if config else None,
    )
    assert result.success
    return result


def stack(body: bytes) -> np.ndarray:
    return tifffile.imread(io.BytesIO(body))


def manifest_at(root: UPath, name: str) -> Manifest:
    return Manifest.model_validate_json((root / f"{name}.json").read_text())


def snapshot(directory: Path) -> dict[str, int]:
    """Every path under `directory` with its modification time."""
    return {str(p.relative_to(directory)): p.stat().st_mtime_ns for p in directory.rglob("*")}


def test_epfl_stack_is_an_image_with_its_ground_truth_as_label(epfl_replica, storage_root):
    server, served = epfl_replica
    run(epfl_hippocampus)
    manifest = manifest_at(UPath(storage_root), "epfl_hippocampus")
    assert [image.model_dump() for image in manifest.images] == [
        {
            "name": "training",
            "path": "epfl_hippocampus/training.ome.zarr",
            "shape_zyx": list(stack(served["training.tif"]).shape),
            "voxel_size_nm": [5.0, 5.0, 5.0],
            "labels": ["groundtruth"],
        }
    ]
    image = open_image("epfl_hippocampus")
    assert np.array_equal(image.data[:], stack(served["training.tif"]))
    assert np.array_equal(image.labels["groundtruth"][:], stack(served["training_groundtruth.tif"]))
    assert image.voxel_size_nm == (5.0, 5.0, 5.0) and image.translation_nm == (0.0, 0.0, 0.0)

    # An unchanged refresh converts nothing and writes nothing under the image.
    store = storage_root / "epfl_hippocampus" / "training.ome.zarr"
    before = snapshot(store)
    run(epfl_hippocampus)
    assert snapshot(store) == before

    # A changed source is converted again, and the image follows it.
    changed = np.flip(stack(served["training.tif"]), axis=0).copy()
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, changed, photometric="minisblack")
    server.put(EPFL_DIRECTORY + "training.tif", buffer.getvalue(), content_type="image/tiff")
    run(epfl_hippocampus)
    assert np.array_equal(open_image("epfl_hippocampus").data[:], changed)
    assert sorted(p.name for p in (storage_root / "epfl_hippocampus").iterdir()) == [
        "training.ome.zarr", "training.tif", "training_groundtruth.tif",
    ]  # fmt: skip


def test_epfl_ground_truth_alone_is_still_converted(epfl_replica, storage_root):
    _, served = epfl_replica
    run(epfl_hippocampus, {"config": {"files": ["testing_groundtruth.tif", "volumedata.tif"]}})
    manifest = manifest_at(UPath(storage_root), "epfl_hippocampus")
    assert [(i.name, i.labels) for i in manifest.images] == [
        ("testing_groundtruth", []), ("volumedata", []),
    ]  # fmt: skip
    image = open_image("epfl_hippocampus", name="volumedata")
    assert np.array_equal(image.data[:], stack(served["volumedata.tif"]))


def test_idr_xy_stack_is_the_volume_and_xz_stays_a_file(idr_replica, storage_root):
    _, served = idr_replica
    run(idr_0086)
    manifest = manifest_at(UPath(storage_root), "idr_0086")
    (entry,) = manifest.images
    assert entry.name == IDR_XY.removesuffix(".tif")
    assert entry.voxel_size_nm == manifest.voxel_size_nm
    assert np.array_equal(open_image("idr_0086").data[:], stack(served[IDR_XY]))
    assert not any(IDR_XZ.removesuffix(".tif") in i.path for i in manifest.images)


def test_empiar_slices_in_name_order_are_one_volume(empiar_replica, storage_root):
    run(empiar_11759)
    manifest = manifest_at(UPath(storage_root), "empiar_11759")
    (entry,) = manifest.images
    assert entry.shape_zyx == [len(SLICES), *SLICE_SHAPE]
    assert entry.voxel_size_nm == manifest.voxel_size_nm == [7.5, 7.5, 45.0]
    # The replica draws the slices in name order from this generator (see replicas.empiar).
    rng = np.random.default_rng(11759)
    expected = np.stack([rng.integers(0, 256, SLICE_SHAPE, dtype=np.uint8) for _ in SLICES])
    assert np.array_equal(open_image("empiar_11759").data[:], expected)


def test_images_on_s3_are_named_by_content_and_the_superseded_one_removed(
    epfl_replica, s3_replica, monkeypatch
):
    server, served = epfl_replica
    s3_replica.create_bucket("em-images")
    monkeypatch.setenv("EM_ASSETS_ROOT", "s3://em-images/corpus")
    root = UPath("s3://em-images/corpus")
    run(epfl_hippocampus)
    first = manifest_at(root, "epfl_hippocampus").images[0].path
    assert first.startswith("epfl_hippocampus/training-") and first.endswith(".ome.zarr")
    image = open_image("epfl_hippocampus", root="s3://em-images/corpus")
    assert str(image.path).startswith("s3://")
    assert np.array_equal(image.data[:], stack(served["training.tif"]))
    assert np.array_equal(image.labels["groundtruth"][:], stack(served["training_groundtruth.tif"]))

    def objects() -> dict[str, str]:
        listing = s3_replica.client().list_objects_v2(Bucket="em-images", Prefix="corpus/")
        return {o["Key"]: o["ETag"] + str(o["LastModified"]) for o in listing["Contents"]}

    before = objects()
    run(epfl_hippocampus)
    after = objects()
    after.pop("corpus/epfl_hippocampus.json"), before.pop("corpus/epfl_hippocampus.json")
    assert after == before  # nothing rewritten but the manifest

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, stack(served["training.tif"])[::-1], photometric="minisblack")
    server.put(EPFL_DIRECTORY + "training.tif", buffer.getvalue(), content_type="image/tiff")
    run(epfl_hippocampus)
    second = manifest_at(root, "epfl_hippocampus").images[0].path
    assert second != first
    assert not any(key.startswith(f"corpus/{first}/") for key in objects())
    assert np.array_equal(
        open_image("epfl_hippocampus", root=root).data[:], stack(served["training.tif"])[::-1]
    )


def test_images_on_gcs_open_with_open_image(epfl_replica, gcs_replica, monkeypatch):
    import gcsfs

    _, served = epfl_replica
    gcsfs.GCSFileSystem().mkdir("em-images")
    monkeypatch.setenv("EM_ASSETS_ROOT", "gs://em-images/corpus")
    run(epfl_hippocampus)
    image = open_image("epfl_hippocampus")
    assert str(image.path).startswith("gs://em-images/corpus/epfl_hippocampus/training-")
    assert np.array_equal(image.data[:], stack(served["training.tif"]))
    assert np.array_equal(image.labels["groundtruth"][:], stack(served["training_groundtruth.tif"]))


def test_open_image_names_what_is_missing_and_how_to_build_it(storage_root, epfl_replica):
    with pytest.raises(ImageNotMaterializedError) as caught:
        open_image("idr_0086")
    message = str(caught.value)
    assert "'idr_0086' is not materialized" in message
    assert "dagster asset materialize -m em_assets --select idr_0086" in message
    run(epfl_hippocampus)
    with pytest.raises(KeyError, match="its images are: training"):
        open_image("epfl_hippocampus", name="testing")


def test_importing_open_image_does_not_build_the_definitions():
    code = (
        "import sys, em_assets\n"
        "from em_assets import open_image\n"
        "assert callable(open_image)\n"
        "assert 'em_assets.definitions' not in sys.modules, 'definitions were built'\n"
        "from em_assets import defs\n"
        "assert type(defs).__name__ == 'Definitions'\n"
        "assert 'defs' in dir(em_assets)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=False,
    )
    assert completed.returncode == 0, completed.stderr


def neuroglancer_state(url: str) -> dict:
    parts = urlsplit(url)
    assert (
        f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://neuroglancer-demo.appspot.com/"
    )
    assert parts.fragment.startswith("!")
    return json.loads(unquote(parts.fragment[1:]))


def box_of(state: dict) -> tuple[list[float], list[float], dict]:
    (layer,) = [layer for layer in state["layers"] if layer["type"] == "annotation"]
    (box,) = layer["annotations"]
    assert box["type"] == "axis_aligned_bounding_box"
    return box["pointA"], box["pointB"], layer["source"]


def test_hemibrain_crop_is_listed_and_boxed_in_its_precomputed_source(
    hemibrain_replica, storage_root
):
    result = run(flyem_hemibrain, SMALL_CROP)
    manifest = manifest_at(UPath(storage_root), "flyem_hemibrain")
    (entry,) = manifest.images
    assert entry.path == manifest.array_path and entry.shape_zyx == manifest.shape
    assert entry.voxel_size_nm == manifest.voxel_size_nm
    image = open_image("flyem_hemibrain")
    crop = manifest.crop
    assert crop is not None and list(image.translation_nm) == crop.translation_nm

    state = neuroglancer_state(manifest.neuroglancer_url or "")
    assert state["layers"][0]["source"] == os.environ["EM_HEMIBRAIN_URL"]
    assert state["layers"][0]["source"].startswith("precomputed://http")
    point_a, point_b, source = box_of(state)
    assert point_a == crop.offset_voxels
    assert point_b == [o + s for o, s in zip(crop.offset_voxels, crop.size_voxels, strict=True)]
    assert source == {"url": "local://annotations"}  # precomputed voxels sit at v × resolution
    assert state["dimensions"] == {
        a: [v * 1e-9, "m"] for a, v in zip("xyz", manifest.voxel_size_nm, strict=True)
    }
    assert state["position"] == [
        o + s / 2 for o, s in zip(crop.offset_voxels, crop.size_voxels, strict=True)
    ]
    metadata = result.asset_materializations_for_node("flyem_hemibrain")[0].metadata
    assert metadata["neuroglancer_url"].value == manifest.neuroglancer_url


def test_openorganelle_crop_is_boxed_in_its_zarr_source_over_https(
    openorganelle_replica, storage_root
):
    run(openorganelle_jrc, SMALL_CROP)
    manifest = manifest_at(UPath(storage_root), "openorganelle_jrc")
    crop = manifest.crop
    assert crop is not None and manifest.images[0].path == manifest.array_path
    state = neuroglancer_state(manifest.neuroglancer_url or "")
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    bucket_key = openorganelle_replica.url.removeprefix("s3://")
    assert state["layers"][0]["source"] == f"zarr://{endpoint}/{bucket_key}/recon-1/em/fibsem-uint8"
    point_a, point_b, source = box_of(state)
    assert point_a == crop.offset_voxels
    assert point_b == [o + s for o, s in zip(crop.offset_voxels, crop.size_voxels, strict=True)]
    # The level is translated: the box layer is shifted by translation / voxel size, so
    # box voxel v lands where the source puts voxel v.
    level_translation = [
        t - o * v
        for t, o, v in zip(
            crop.translation_nm, crop.offset_voxels, manifest.voxel_size_nm, strict=True
        )
    ]
    shift = [row[3] for row in source["transform"]["matrix"]]
    assert shift == pytest.approx(
        [t / v for t, v in zip(level_translation, manifest.voxel_size_nm, strict=True)]
    )
    assert any(shift)


def test_report_lists_each_datasets_images_and_crop_link():
    training = ImageEntry(
        name="training", path="epfl/training.ome.zarr", shape_zyx=[165, 768, 1024],
        voxel_size_nm=[5, 5, 5], labels=["groundtruth"],
    )  # fmt: skip
    epfl = manifest("epfl", [5, 5, 5]).model_copy(update={"images": [training]})
    crop = manifest("crop", [8, 8, 8]).model_copy(
        update={"neuroglancer_url": "https://neuroglancer-demo.appspot.com/#!%7B%7D"}
    )
    report = build_report({"epfl": epfl, "crop": crop})
    document = markdown(report, comparison_table(report))
    assert (
        "- epfl / `training`: `epfl/training.ome.zarr`, 165 × 768 × 1024 (z × y × x), "
        "labels: groundtruth"
    ) in document
    assert "[the crop in Neuroglancer](https://neuroglancer-demo.appspot.com/#!%7B%7D)" in document
    assert report.datasets["epfl"].images == epfl.images


def test_images_intact_finds_what_a_loader_would_trip_on(epfl_replica, storage_root):
    """Each fault a loader could meet makes the check fail naming the image; rot inside a
    chunk only under `deep`, which decodes every chunk."""
    run(epfl_hippocampus)
    root = UPath(storage_root)
    manifest = manifest_at(root, "epfl_hippocampus")
    store = storage_root / "epfl_hippocampus" / "training.ome.zarr"

    def rebuild() -> None:  # with a pyramid (the replica's stack is below the 512 limit)
        shutil.rmtree(store)
        (source,) = labelled_stacks(root, manifest.files)
        write_image(UPath(store), source, (5.0, 5.0, 5.0), "EPFL", limit=16)

    def problems(deep: bool = False, of: Manifest = manifest) -> str:
        result = images_intact(root, of, deep)
        assert result.passed is (result.metadata["problems"].value == "none")
        return str(result.metadata["problems"].value)

    rebuild()
    assert problems() == problems(deep=True) == "none"
    voxels = int(np.prod(manifest.images[0].shape_zyx))
    deep = images_intact(root, manifest, deep=True)
    assert deep.metadata["voxels_decoded"].value > 2 * voxels  # image + label, every level

    shutil.rmtree(store / "s1")
    assert "training.ome.zarr/s1: listed in multiscales but missing" in problems()

    def reshape(array: Path, shape: list[int]) -> None:
        meta = json.loads((array / ".zarray").read_text())
        (array / ".zarray").write_text(json.dumps({**meta, "shape": shape}))

    rebuild()
    s1 = json.loads((store / "s1" / ".zarray").read_text())["shape"]
    reshape(store / "s1", [s1[0], s1[1] * 3, s1[2]])
    assert "training.ome.zarr/s1: shape" in problems() and "is not a 2× level of" in problems()

    rebuild()
    reshape(store / "labels" / "groundtruth" / "s0", [1, 2, 3])
    assert "labels/groundtruth/s0: shape (1, 2, 3), the image is" in problems()

    rebuild()
    chunk = next(p for p in sorted((store / "s0").rglob("*")) if p.is_file() and p.name[0] != ".")
    chunk.write_bytes(b"rot" * 100)
    assert problems() == "none"
    assert "training.ome.zarr/s0: a chunk does not decode" in problems(deep=True)

    rebuild()
    shutil.rmtree(store / "labels" / "groundtruth")
    assert "labels/groundtruth: missing" in problems()

    rebuild()
    attrs = json.loads((store / ".zattrs").read_text())
    attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"] = [5, 5, 6]
    (store / ".zattrs").write_text(json.dumps(attrs))
    assert "voxel_size_nm is [6.0, 5.0, 5.0] in the store" in problems()

    rebuild()
    changed = manifest.model_copy(deep=True)
    changed.files[0].sha256 = "0" * 64
    assert f"made from {changed.files[0].path} with sha256" in problems(of=changed)

    shutil.rmtree(store)
    assert "cannot be opened as an OME-Zarr image" in problems()
