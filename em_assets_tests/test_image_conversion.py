"""Stacks into OME-Zarr images: exact s0, a correct pyramid, valid NGFF, atomic placement."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from ome_zarr.format import FormatV04
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader
from ome_zarr_models.v04.image import Image as NgffImage
from ome_zarr_models.v04.image_label import ImageLabel as NgffImageLabel
from upath import UPath

from em_assets.crops.ome_zarr import open_group
from em_assets.images.convert import (
    RECORD_KEY,
    SLAB_BYTES,
    ImageSource,
    LabelShapeError,
    LabelSource,
    chunks_for,
    write_image,
)
from em_assets.images.file_datasets import slice_stack
from em_assets.images.planes import InconsistentSliceError, dm3_planes, tiff_planes
from em_assets.images.pyramid import plan_levels
from em_assets.images.store import is_current, publish
from em_assets.manifest.model import FileEntry
from em_assets_tests.replicas.digital_micrograph import dm3_bytes

VOXEL = (5.0, 6.0, 7.0)


def write_tiff(path: Path, volume: np.ndarray, **options) -> UPath:
    tifffile.imwrite(path, volume, photometric="minisblack", **options)
    return UPath(path)


def reference_mean(volume: np.ndarray, step: tuple[int, int, int]) -> np.ndarray:
    """Block means written out voxel by voxel: what a 2× mean level must hold (the last
    block of an odd axis is the mean of the voxels that exist, rounded half up)."""
    shape = tuple(math.ceil(n / f) for n, f in zip(volume.shape, step, strict=True))
    out = np.zeros(shape, dtype=volume.dtype)
    for index in itertools.product(*(range(n) for n in shape)):
        block = volume[tuple(slice(i * f, (i + 1) * f) for i, f in zip(index, step, strict=True))]
        out[index] = math.floor(float(block.mean()) + 0.5)
    return out


@pytest.fixture
def stack(tmp_path: Path) -> tuple[np.ndarray, np.ndarray, ImageSource]:
    rng = np.random.default_rng(15)
    image = rng.integers(0, 256, (19, 23, 37), dtype=np.uint8)
    truth = np.where(image > 180, 255, 0).astype(np.uint8)
    source = ImageSource(
        "training",
        tiff_planes(write_tiff(tmp_path / "training.tif", image)),
        {"a/training.tif": "1" * 64, "a/training_groundtruth.tif": "2" * 64},
        (
            LabelSource(
                "groundtruth",
                tiff_planes(write_tiff(tmp_path / "truth.tif", truth)),
                "a/training_groundtruth.tif",
            ),
        ),
    )
    return image, truth, source


def test_image_and_label_equal_their_stacks_at_every_level(tmp_path, stack):
    image, truth, source = stack
    path = UPath(tmp_path / "training.ome.zarr")
    write_image(path, source, VOXEL, "EPFL", limit=10)
    group = open_group(path)
    multiscale = group.attrs["multiscales"][0]
    assert [d["path"] for d in multiscale["datasets"]] == ["s0", "s1", "s2"]
    assert np.array_equal(group["s0"][:], image)
    label = group["labels"]["groundtruth"]
    assert np.array_equal(label["s0"][:], truth)
    # 19 x 23 x 37 at 5, 6, 7 nm: z, y halve twice; x (7 nm < 2 x 5 nm) too.
    expected, expected_truth = image, truth
    for level in ("s1", "s2"):
        expected = reference_mean(expected, (2, 2, 2))
        expected_truth = expected_truth[::2, ::2, ::2]
        assert np.array_equal(group[level][:], expected), level
        assert np.array_equal(label[level][:], expected_truth), level
    transforms = multiscale["datasets"][2]["coordinateTransformations"]
    assert transforms[0]["scale"] == [28.0, 24.0, 20.0]  # z, y, x: 4 x s0
    assert transforms[1]["translation"] == [10.5, 9.0, 7.5]  # centre of 4 s0 voxels
    assert group.attrs[RECORD_KEY] == source.record(VOXEL)
    assert label.attrs["image-label"]["source"] == {"image": "../../"}
    assert group["labels"].attrs["labels"] == ["groundtruth"]


def test_ngff_metadata_validates_and_ome_zarr_py_reads_image_and_label(tmp_path, stack):
    image, truth, source = stack
    path = tmp_path / "training.ome.zarr"
    write_image(UPath(path), source, VOXEL, "EPFL", limit=10)
    root = zarr.open_group(str(path), mode="r", zarr_format=2)
    NgffImage.from_zarr(root)
    NgffImageLabel.from_zarr(root["labels"]["groundtruth"])

    nodes = list(Reader(parse_url(str(path), fmt=FormatV04()))())
    assert np.array_equal(np.asarray(nodes[0].data[0]), image)
    assert [tuple(level.shape) for level in nodes[0].data] == [
        (19, 23, 37),
        (10, 12, 19),
        (5, 6, 10),
    ]
    labels = [n for n in nodes if n.zarr.basename() == "groundtruth"]
    assert len(labels) == 1 and np.array_equal(np.asarray(labels[0].data[0]), truth)


def test_big_endian_stack_is_stored_native_with_equal_values(tmp_path):
    volume = np.arange(3 * 5 * 7, dtype=">u2").reshape(3, 5, 7) * 300
    planes = tiff_planes(write_tiff(tmp_path / "big.tif", volume, byteorder=">"))
    path = UPath(tmp_path / "big.ome.zarr")
    write_image(path, ImageSource("big", planes, {}), VOXEL, "t")
    stored = open_group(path)["s0"]
    assert stored.dtype == np.dtype("uint16") and np.array_equal(stored[:], volume)


def test_label_of_another_shape_is_refused_by_name(tmp_path, stack):
    _, _, source = stack
    wrong = tiff_planes(write_tiff(tmp_path / "wrong.tif", np.zeros((19, 23, 36), np.uint8)))
    bad = ImageSource("training", source.planes, {}, (LabelSource("gt", wrong, "a/wrong.tif"),))
    with pytest.raises(LabelShapeError, match=r"a/wrong\.tif"):
        write_image(UPath(tmp_path / "x.ome.zarr"), bad, VOXEL, "t")


def dm3_entry(root: Path, name: str, image: np.ndarray) -> FileEntry:
    (root / "empiar").mkdir(exist_ok=True)
    (root / "empiar" / name).write_bytes(dm3_bytes(image, 7.5))
    return FileEntry(
        path=f"empiar/{name}", bytes=1, sha256="3" * 64, shape=list(image.shape),
        dtype=str(image.dtype),
    )  # fmt: skip


def test_dm3_slices_stack_in_name_order(tmp_path):
    rng = np.random.default_rng(3)
    slices = {f"s_{i:02d}.dm3": rng.integers(0, 256, (6, 9), dtype=np.uint8) for i in range(5)}
    entries = [dm3_entry(tmp_path, n, a) for n, a in reversed(slices.items())]
    (source,) = slice_stack(UPath(tmp_path), entries)
    path = UPath(tmp_path / "volume.ome.zarr")
    write_image(path, source, VOXEL, "t")
    assert np.array_equal(open_group(path)["s0"][:], np.stack(list(slices.values())))


def test_dm3_slice_of_another_shape_or_type_is_named(tmp_path):
    good = np.zeros((6, 9), np.uint8)
    entries = [dm3_entry(tmp_path, "a.dm3", good), dm3_entry(tmp_path, "b.dm3", good[:, :8])]
    with pytest.raises(InconsistentSliceError, match=r"empiar/b\.dm3"):
        slice_stack(UPath(tmp_path), entries)
    entries[1] = dm3_entry(tmp_path, "b.dm3", good.astype(np.uint16))
    with pytest.raises(InconsistentSliceError, match=r"empiar/b\.dm3"):
        slice_stack(UPath(tmp_path), entries)
    # A header that lied is still caught when the slice itself is read.
    paths = [UPath(tmp_path / "empiar" / "a.dm3"), UPath(tmp_path / "empiar" / "b.dm3")]
    with pytest.raises(InconsistentSliceError, match=r"b\.dm3 is 6 × 9 uint16"):
        list(dm3_planes(paths, (6, 9), "uint8"))


def test_levels_stop_at_512_and_spare_the_coarse_axis():
    levels = plan_levels((1000, 5500, 5496), (8.0, 8.0, 50.0))
    factors = [f for _, f in levels]
    assert factors[:2] == [(2, 2, 1), (4, 4, 1)]  # z (50 nm) waits for x, y to catch up
    assert factors[2] == (8, 8, 2)
    assert max(levels[-1][0]) <= 512 and max(levels[-2][0]) > 512
    assert plan_levels((165, 768, 1024), (5.0, 5.0, 5.0)) == [((83, 384, 512), (2, 2, 2))]
    assert plan_levels((7, 40, 56), (5.0, 5.0, 5.0)) == []


def test_chunk_layers_stay_within_the_slab_budget():
    assert chunks_for((165, 768, 1024), np.dtype("uint8")) == (32, 128, 128)
    assert chunks_for((1000, 5500, 5496), np.dtype("uint16")) == (1, 512, 512)
    assert chunks_for((3, 40, 56), np.dtype("uint8")) == (3, 40, 56)  # one chunk holds it
    depth, _, _ = chunks_for((1000, 1000, 1000), np.dtype("uint8"))
    assert depth * 1000 * 1000 <= SLAB_BYTES and depth == 32


def test_failed_conversion_leaves_the_old_image_and_no_staging(tmp_path, stack):
    _, _, source = stack
    directory = UPath(tmp_path / "dataset")
    publish(directory, "training.ome.zarr", lambda p: write_image(p, source, VOXEL, "t"))
    record = source.record(VOXEL)
    assert is_current(directory / "training.ome.zarr", record)

    def crash(path: UPath) -> None:
        write_image(path, source, (9.0, 9.0, 9.0), "t")
        raise RuntimeError("killed mid-conversion")

    with pytest.raises(RuntimeError):
        publish(directory, "training.ome.zarr", crash)
    assert sorted(p.name for p in Path(directory.path).iterdir()) == ["training.ome.zarr"]
    assert is_current(directory / "training.ome.zarr", record)


def test_a_new_conversion_replaces_the_image_whole(tmp_path, stack):
    _, _, source = stack
    directory = UPath(tmp_path / "dataset")
    publish(directory, "training.ome.zarr", lambda p: write_image(p, source, VOXEL, "t"))
    smaller = ImageSource(
        "training", tiff_planes(write_tiff(tmp_path / "s.tif", np.ones((2, 3, 4), np.uint8))), {}
    )
    publish(directory, "training.ome.zarr", lambda p: write_image(p, smaller, VOXEL, "t"))
    group = open_group(directory / "training.ome.zarr")
    assert group["s0"].shape == (2, 3, 4) and "labels" not in group
    assert sorted(p.name for p in Path(directory.path).iterdir()) == ["training.ome.zarr"]
