"""The crop machinery on its own: tiling, placement, background, digests, level mapping."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pytest
import zarr

from em_assets.crops.copy import copy_crop, stored_digest
from em_assets.crops.geometry import Box, block_shape, blocks
from em_assets.crops.placement import place_crop
from em_assets.crops.statistics import RunningStatistics, background_voxels
from em_assets.crops.volume import corresponding_box, probe_level

LOG = logging.getLogger("test")


def test_blocks_tile_the_crop_exactly_once():
    crop = Box((64, 32, 16), (200, 130, 70))
    seen = np.zeros(crop.size[::-1], dtype=int)
    for block in blocks(crop, (64, 64, 32)):
        assert all(
            crop.offset[i] <= block.offset[i] and block.end[i] <= crop.end[i] for i in range(3)
        )
        seen[block.relative_to(crop.offset).zyx_slices()] += 1
    assert (seen == 1).all()


def test_block_shape_is_whole_chunks_within_the_target():
    shape = block_shape((64, 64, 64), 256**3)
    assert shape == (256, 256, 256)
    assert block_shape((128, 128, 16), 2**20) == (256, 256, 16)
    assert block_shape((64, 64, 64), 1) == (64, 64, 64)  # never less than a chunk


def test_background_counts_empty_and_flat_tiles_not_texture():
    block = np.zeros((16, 16, 16), dtype=np.uint8)
    block[:8] = 77  # flat but not zero: still background
    block[:, :8, :8] = np.random.default_rng(0).integers(0, 255, (16, 8, 8))
    assert background_voxels(block) == 16 * 16 * 16 - 16 * 8 * 8


@pytest.mark.parametrize("shape", [(64, 64, 64), (32, 128, 64), (64, 64, 40)])
def test_background_of_whole_tiles_agrees_with_the_general_rule(shape):
    rng = np.random.default_rng(sum(shape))
    block = rng.integers(0, 255, shape).astype(np.uint8)
    block[:, :, : shape[2] // 2] = 0
    block[: shape[0] // 2, :16, :] = 200 + rng.integers(0, 4, (shape[0] // 2, 16, shape[2]))
    block[-8:, -8:, -8:] = 90 + rng.integers(0, 5, (8, 8, 8))  # spans 4 levels: not flat
    padded = np.zeros((shape[0], shape[1], shape[2] + 1), dtype=np.uint8)
    padded[:, :, : shape[2]] = block  # one more voxel: the general (reduceat) path
    general = background_voxels(padded) - shape[0] * shape[1]  # the extra column is empty
    assert background_voxels(block) == general
    assert 0 < general < block.size


def test_running_statistics_match_numpy_over_blocks():
    data = np.random.default_rng(1).integers(0, 200, (40, 30, 20)).astype(np.uint8)
    stats = RunningStatistics()
    for part in np.array_split(data, 3, axis=0):
        stats.add(part)
    summary = stats.summary()
    assert summary["minimum"] == data.min() and summary["maximum"] == data.max()
    assert summary["mean"] == pytest.approx(data.mean())


def test_placement_is_seeded_on_grid_and_rejects_background():
    bounds = Box((10, 20, 30), (640, 640, 640))
    empty_half = 10 + 320

    def background_of(box: Box) -> float:
        return 1.0 if box.offset[0] >= empty_half else 0.0

    first = place_crop(bounds, (64, 64, 64), (128, 128, 128), 5, background_of, LOG)
    again = place_crop(bounds, (64, 64, 64), (128, 128, 128), 5, background_of, LOG)
    assert first.box == again.box
    assert first.box.offset[0] < empty_half
    assert all((first.box.offset[i] - bounds.offset[i]) % 64 == 0 for i in range(3))
    assert all(
        bounds.offset[i] <= first.box.offset[i] < first.box.end[i] <= bounds.end[i]
        for i in range(3)
    )
    rejections = [
        place_crop(bounds, (64, 64, 64), (128, 128, 128), seed, background_of, LOG)
        for seed in range(20)
    ]
    assert any("0 rejected" not in p.description for p in rejections)
    assert all(p.box.offset[0] < empty_half for p in rejections)


def test_all_background_keeps_the_least_empty_and_says_so():
    bounds = Box((0, 0, 0), (256, 64, 64))

    def background_of(box: Box) -> float:
        return 0.9 if box.offset[0] == 0 else 1.0

    placement = place_crop(bounds, (64, 64, 64), (64, 64, 64), 0, background_of, LOG)
    assert placement.box.offset == (0, 0, 0)
    assert "least empty (90%)" in placement.description


@dataclass
class Level:
    name: str
    bounds: Box
    voxel_size_nm: tuple[float, float, float]
    translation_nm: tuple[float, float, float]
    chunk: tuple[int, int, int] = (64, 64, 64)


def test_corresponding_box_maps_through_physical_space():
    fine = Level("s0", Box((0, 0, 0), (1024, 1024, 1024)), (8, 8, 8), (0, 0, 0))
    coarse = Level("s2", Box((0, 0, 0), (256, 256, 256)), (32, 32, 32), (12, 12, 12))
    mapped = corresponding_box(fine, Box((128, 256, 512), (128, 128, 128)), coarse)
    assert mapped.offset == (31, 63, 127) and mapped.size == (33, 33, 33)


def test_probe_level_is_the_coarsest_that_still_resolves_the_crop():
    levels = [
        Level(f"s{i}", Box((0, 0, 0), (1024 >> i,) * 3), (8 * 2**i,) * 3, (0, 0, 0))
        for i in range(6)
    ]
    assert probe_level(levels, levels[0], (128, 128, 128)).name == "s4"
    assert probe_level(levels, levels[0], (16, 16, 16)).name == "s1"


@pytest.mark.parametrize(
    ("block", "workers"),
    [((32, 32, 32), 1), ((32, 32, 32), 4), ((64, 32, 32), 3), ((128, 64, 64), 2)],
)
def test_digest_does_not_depend_on_block_size_or_parallelism(block, workers):
    data = np.random.default_rng(2).integers(0, 255, (96, 80, 100)).astype(np.uint8)  # z,y,x
    crop = Box((0, 0, 0), (100, 80, 96))
    output = zarr.create_array(
        zarr.storage.MemoryStore(), shape=data.shape, chunks=(32, 32, 32), dtype="uint8"
    )
    result = copy_crop(
        lambda b: (data[b.zyx_slices()], 0), crop, (32, 32, 32), block, output, LOG, "t", workers
    )
    np.testing.assert_array_equal(output[:], data)
    reference = zarr.create_array(
        zarr.storage.MemoryStore(), shape=data.shape, chunks=(32, 32, 32), dtype="uint8"
    )
    reference[:] = data
    assert result.content_digest == stored_digest(reference, (32, 32, 32))
    data_changed = data.copy()
    data_changed[50, 40, 30] ^= 1
    reference[:] = data_changed
    assert result.content_digest != stored_digest(reference, (32, 32, 32))


def test_source_urls_map_to_anonymous_tensorstore_stores(monkeypatch):
    from em_assets.crops.chunk_reader import kvstore_spec

    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert kvstore_spec("gs://bucket/a/b") == {
        "driver": "http",
        "base_url": "https://storage.googleapis.com/bucket/a/b/",
    }
    assert kvstore_spec("https://host/x/")["base_url"] == "https://host/x/"
    s3 = kvstore_spec("s3://bucket/a.zarr/s0")
    assert s3["bucket"] == "bucket" and s3["path"] == "a.zarr/s0/"
    assert s3["aws_credentials"] == {"type": "anonymous"} and "endpoint" not in s3
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9023")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    assert kvstore_spec("gs://bucket/a")["base_url"] == "http://127.0.0.1:9023/bucket/a/"
    assert kvstore_spec("s3://bucket/a")["endpoint"] == "http://127.0.0.1:5000"
