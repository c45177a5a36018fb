"""The crop machinery on its own: tiling, placement, background, digests, level mapping."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pytest
import zarr
from cloudvolume import CloudVolume
from upath import UPath

from em_assets.crops.copy import CopyResult, copy_crop, stored_digest
from em_assets.crops.geometry import Box, block_shape, blocks
from em_assets.crops.placement import (
    AFTER_COPY,
    CandidateSearch,
    place_crop,
    seeded_candidates,
)
from em_assets.crops.statistics import (
    RunningStatistics,
    background_fraction,
    background_voxels,
    coarse_background_fraction,
)
from em_assets.crops.steps import MAX_COPIES, CropOutcome, place_and_copy
from em_assets.crops.steps import background_of as pipeline_background
from em_assets.crops.volume import corresponding_box, probe_level
from em_assets_tests.replicas.precomputed import EDGE

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


def test_padding_with_jpeg_ripple_is_background_dim_texture_is_not():
    rng = np.random.default_rng(4)
    block = rng.integers(0, 9, (16, 16, 16)).astype(np.uint8)  # zeros rippling up to 8
    block[:, :, 8:] = rng.integers(5, 20, (16, 16, 8))  # dim, but tissue
    assert background_voxels(block) == 16 * 16 * 8


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
    assert probe_level(levels, levels[0], (128, 128, 128)).name == "s3"
    assert probe_level(levels, levels[0], (32, 32, 32)).name == "s1"
    assert probe_level(levels, levels[0], (16, 16, 16)).name == "s0"


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


def straddling_crops(replica, size: int, mip: int) -> list[tuple[Box, float, float]]:
    """Crops of `size` (mip 0) across the replica's tissue edge, every 8 voxels along x:
    (crop, full-resolution background fraction, estimate on `mip`)."""
    full = CloudVolume(f"file://{replica.directory}", mip=0, fill_missing=False, progress=False)
    coarse = CloudVolume(f"file://{replica.directory}", mip=mip, fill_missing=False, progress=False)
    origin = tuple(int(v) for v in full.voxel_offset)
    factor = 2**mip
    out = []
    for dx in range(max(0, EDGE[0] - size + 8), EDGE[0], 8):
        box = Box((origin[0] + dx, origin[1] + 32, origin[2] + 16), (size,) * 3)
        (x0, y0, z0), (x1, y1, z1) = box.offset, box.end
        truth = background_fraction(np.asarray(full[x0:x1, y0:y1, z0:z1])[..., 0])
        low = [box.offset[i] // factor for i in range(3)]
        high = [-(-box.end[i] // factor) for i in range(3)]
        block = np.asarray(coarse[low[0] : high[0], low[1] : high[1], low[2] : high[2]])[..., 0]
        out.append((box, truth, coarse_background_fraction(block, factor)))
    return out


@pytest.mark.parametrize(("size", "mip"), [(64, 2), (128, 3)])
def test_coarse_estimate_agrees_with_full_resolution_across_an_edge(precomputed_tree, size, mip):
    """The probe's per-voxel rule against the full-resolution tiles, on real JPEG levels
    (the level `probe_level` picks for each size). 8-voxel tiles on the coarse level miss
    by up to 0.45 here, tiles scaled to the downsampling by up to 0.94."""
    crops = straddling_crops(precomputed_tree["edge"], size, mip)
    assert len(crops) >= 5 and any(truth > 0.5 for _, truth, _ in crops)
    errors = [abs(estimate - truth) for _, truth, estimate in crops]
    assert max(errors) <= 0.07, [(b.offset[0], t, e) for b, t, e in crops]


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.uint16])
def test_coarse_estimate_measures_full_range_edges_without_wrapping(dtype):
    """Alternating darkest and brightest voxels: the dark half is empty, the bright half is
    at an edge spanning the type's whole range, which must not wrap around to "flat" in the
    block's own type."""
    info = np.iinfo(dtype)
    dark = min(info.min, 0)
    checker = np.indices((6, 6, 6)).sum(axis=0) % 2 == 0
    block = np.where(checker, info.max, dark).astype(dtype)
    assert coarse_background_fraction(block, 4) == 0.5


def copies_measuring(fractions: dict[int, float]):
    """A copy step whose crops measure `fractions[x offset]` at full resolution."""
    copied: list[Box] = []

    def copy(placement):
        copied.append(placement.box)
        statistics = {"minimum": 0, "maximum": 1, "mean": 0, "background_fraction": 0.0}
        statistics["background_fraction"] = fractions[placement.box.offset[0]]
        result = CopyResult(statistics, "0" * 64, 1, 1, 0.0)
        return CropOutcome(
            placement, result, UPath(f"memory://{placement.box.offset}"), 1, 1, (0,) * 3
        )

    return copy, copied


def search_over(estimates: dict[int, float]) -> CandidateSearch:
    """Candidates along x only (offsets 0, 64, ... 448), estimated by the probe as given."""
    return CandidateSearch(
        Box((0, 0, 0), (512, 64, 64)), (64, 64, 64), (64, 64, 64), 3,
        lambda box: estimates[box.offset[0]], "coarse probe (s2)", LOG,
    )  # fmt: skip


def test_a_copy_that_is_mostly_background_is_rejected_and_the_next_candidate_copied():
    search = search_over({})
    first, second, third = (box.offset[0] for box in list(seeded_candidates(
        search.bounds, search.chunk, search.size, search.seed, 32
    ))[:3])  # fmt: skip
    everywhere = dict.fromkeys(range(0, 512, 64), 0.1)
    copy, copied = copies_measuring({**everywhere, first: 0.9})
    estimates = {**everywhere, second: 0.8}
    search.background_of = lambda box: estimates[box.offset[0]]
    kept, rejected_copies = place_and_copy(search, copy, LOG)
    assert [box.offset[0] for box in copied] == [first, third]
    assert [c.placement.box for c in rejected_copies] == copied[:1]
    assert pipeline_background(kept) == 0.1
    assert [(r.box.offset[0], r.background, r.judged_on) for r in kept.placement.rejected] == [
        (first, 0.9, AFTER_COPY),
        (second, 0.8, "coarse probe (s2)"),
    ]
    assert "confirmed at full resolution (10% background)" in kept.placement.description


def test_copies_are_bounded_and_the_least_empty_copy_is_kept():
    measured = {x: 0.6 + x / 10_000 for x in range(0, 512, 64)}
    copy, copied = copies_measuring(measured)
    kept, rejected_copies = place_and_copy(search_over(dict.fromkeys(measured, 0.1)), copy, LOG)
    assert len(copied) == MAX_COPIES
    assert pipeline_background(kept) == min(measured[b.offset[0]] for b in copied)
    assert len(rejected_copies) == MAX_COPIES - 1
    assert kept.placement.box not in [r.box for r in kept.placement.rejected]
    assert f"the least of the {MAX_COPIES} crops copied" in kept.placement.description


def test_a_probe_fallback_is_copied_once():
    copy, copied = copies_measuring(dict.fromkeys(range(0, 512, 64), 0.9))
    kept, _ = place_and_copy(search_over(dict.fromkeys(range(0, 512, 64), 0.7)), copy, LOG)
    assert len(copied) == 1 and not kept.placement.accepted
    assert kept.placement.description.endswith(
        "least empty (70%) was kept; 90% background at full resolution"
    )
