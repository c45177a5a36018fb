"""Crop copy, new (tensorstore reads and writes) against the copy as shipped before issue 18
(commit 0bdf5de), the old reader with today's writer, and tensorstore reading the same region
alone (the read limit on this machine).

Each measurement is one process (`python -m benchmarks.crop_copy METHOD KIND URL EDGE`),
so peak RSS is the copy's own; runs of the methods are interleaved, and every copy must
produce the same content digest.

"Copy as shipped at 0bdf5de" is the baseline of issue 18's "≥ 3× faster than the
cloud-volume copy": the copy the issue measured, reproduced setting by setting from that
commit (`git show 0bdf5de:em_assets/crops/...`):

- read: cloud-volume, one `CloudVolume` per worker thread with 0bdf5de's arguments
  (`fill_missing=False, bounded=True, progress=False, cache=False, parallel=1,
  provenance={}`, the layer's `info` passed in), voxels transposed to z, y, x
  (precomputed.py); zarr sources read by zarr-python, `array[z, y, x]` (zarr_source.py);
- write: zarr-python, `array[block] = data` per block, into a zarr v2 array created as
  0bdf5de's `ome_zarr._create_array` did: Blosc zstd level 5 with bitshuffle, fill value 0,
  '/' chunk keys (ome_zarr.py `COMPRESSOR`; today's is zstd level 1 without shuffle);
- loop: 2 workers on blocks of 2**23 voxels (0bdf5de's `CropCopy` defaults), the same
  read, write, digest, statistics order per block as 0bdf5de's `copy_blocks` (today's
  `copy_crop` with `ZarrBlockWriter` runs exactly that: the write finishes before the
  digests), with the garbage collector left as it was (today's copy freezes the loaded
  objects, `copy.loaded_objects_out_of_gc`: swapped for a no-op in that process);
- statistics: 0bdf5de's background tiles by `reduceat` (statistics.py), later made about 50
  times faster; today's module function is swapped for it in that measuring process only.

Not reproduced: the package versions (zarr-python, numcodecs, cloud-volume are today's, in
the same pinned ranges as at 0bdf5de).
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numcodecs
import numpy as np
import zarr
from upath import UPath

from benchmarks.measure import run_measured
from em_assets.crops.chunk_writer import ZarrBlockWriter
from em_assets.crops.copy import copy_crop
from em_assets.crops.geometry import Box, block_shape, blocks
from em_assets.crops.ome_zarr import ARRAY_NAME, ImageSpec, create_image, multiscales
from em_assets.crops.resource import CropCopy

NEW = "new copy (tensorstore read + write)"
SHIPPED = (
    "copy as shipped at 0bdf5de (cloud-volume or zarr-python read, zarr-python write, "
    "Blosc zstd 5 bitshuffle)"
)
OLD_READER = (
    "old reader, today's writer (cloud-volume or zarr-python read, zarr-python write, Blosc zstd 1)"
)
ALONE = "tensorstore read alone"
METHODS = (NEW, SHIPPED, OLD_READER, ALONE)
MB = 1e6

SHIPPED_COMPRESSOR = numcodecs.Blosc(cname="zstd", clevel=5, shuffle=numcodecs.Blosc.BITSHUFFLE)
SHIPPED_WORKERS = 2
SHIPPED_BLOCK_VOXELS = 2**23
SHIPPED_TILE = 8
SHIPPED_FLAT_RANGE = 3


def _level(kind: str, url: str):
    if kind == "precomputed":
        from em_assets.crops.precomputed import open_precomputed

        return open_precomputed(url, "EM_HEMIBRAIN_URL")[1][0]
    from em_assets.crops.zarr_source import open_multiscale

    return open_multiscale(url, "EM_OPENORGANELLE_URL")[1][0]


def _old_reader(kind: str, url: str, level) -> Callable[[Box], tuple[np.ndarray, int]]:
    """How crops were read before tensorstore (em_assets 0bdf5de)."""
    if kind == "zarr":
        return lambda box: (np.asarray(level.array[box.zyx_slices()]), 0)
    import threading

    from cloudvolume import CloudVolume

    local = threading.local()

    def read(box: Box) -> tuple[np.ndarray, int]:
        if not hasattr(local, "volume"):
            local.volume = CloudVolume(
                url, mip=0, info=level.info, fill_missing=False, bounded=True,
                progress=False, cache=False, parallel=1, provenance={},
            )  # fmt: skip
        (x0, y0, z0), (x1, y1, z1) = box.offset, box.end
        data = local.volume[x0:x1, y0:y1, z0:z1]
        return np.ascontiguousarray(np.asarray(data)[..., 0].transpose(2, 1, 0)), 0

    return read


def _shipped_background_voxels(block: np.ndarray, tile: int = SHIPPED_TILE) -> int:
    """0bdf5de's `statistics.background_voxels`, verbatim: tile extremes by `reduceat`."""
    starts = [np.arange(0, n, tile) for n in block.shape]
    highs = block
    lows = block
    for axis, idx in enumerate(starts):
        highs = np.maximum.reduceat(highs, idx, axis=axis)
        lows = np.minimum.reduceat(lows, idx, axis=axis)
    flat = (highs.astype(np.int64) - lows.astype(np.int64)) <= SHIPPED_FLAT_RANGE
    lengths = [np.diff(np.append(idx, n)) for idx, n in zip(starts, block.shape, strict=True)]
    counts = np.multiply.outer(np.multiply.outer(lengths[0], lengths[1]), lengths[2])
    return int(counts[flat].sum())


@contextlib.contextmanager
def _collector_as_shipped() -> Iterator[None]:
    """0bdf5de's copy left the garbage collector alone."""
    yield


def _shipped_image(path: UPath, spec: ImageSpec) -> zarr.Array:
    """The crop's image as 0bdf5de's `ome_zarr.create_image` made it (its compressor)."""
    group = zarr.open_group(path.path, mode="w", zarr_format=2)
    group.attrs["multiscales"] = multiscales(spec)
    return group.create_array(
        ARRAY_NAME, shape=spec.shape_zyx, chunks=spec.chunks_zyx, dtype=spec.dtype,
        compressors=SHIPPED_COMPRESSOR, fill_value=0,
        chunk_key_encoding={"name": "v2", "separator": "/"},
    )  # fmt: skip


def measure_once(method: str, kind: str, url: str, edge: int) -> None:
    level = _level(kind, url)
    crop = Box(level.bounds.offset, (edge, edge, edge))
    copier = CropCopy()
    block = copier.block(level.chunk)
    workers = copier.workers
    started = time.monotonic()
    if method == ALONE:
        with ThreadPoolExecutor(workers) as pool:
            voxels = sum(a.size for a, _ in pool.map(level.read_counted, blocks(crop, block)))
        assert voxels == edge**3
        print(f"seconds {time.monotonic() - started:.3f}")
        return
    with tempfile.TemporaryDirectory() as scratch:
        spec = ImageSpec(
            "bench", (edge,) * 3, level.chunk[::-1], str(level.dtype), (8.0,) * 3, (0.0,) * 3
        )
        path = UPath(scratch) / "crop.ome.zarr"
        if method == NEW:
            read, output, writer = level.read_counted, create_image(path, spec), None
        elif method == OLD_READER:
            output = create_image(path, spec)
            read, writer = _old_reader(kind, url, level), ZarrBlockWriter(output)
        else:
            assert method == SHIPPED, method
            from em_assets.crops import copy, statistics

            # Looked up by RunningStatistics.add and copy_blocks at each call; this process
            # measures only the shipped copy.
            statistics.background_voxels = _shipped_background_voxels
            copy.loaded_objects_out_of_gc = _collector_as_shipped
            block, workers = block_shape(level.chunk, SHIPPED_BLOCK_VOXELS), SHIPPED_WORKERS
            output = _shipped_image(path, spec)
            read, writer = _old_reader(kind, url, level), ZarrBlockWriter(output)
        started = time.monotonic()  # creating the image is not copying
        log = logging.getLogger("bench")
        result = copy_crop(read, crop, level.chunk, block, output, log, "bench", workers, writer)
        seconds = time.monotonic() - started  # deleting the scratch copy is not copying
    print(f"digest {result.content_digest}")
    print(f"seconds {seconds:.3f}")


def compare(kind: str, url: str, edge: int, env: dict[str, str], repeats: int = 3) -> dict:
    """Medians and ranges of wall time and peak RSS per method, runs interleaved."""
    runs: dict[str, list[tuple[float, int]]] = {m: [] for m in METHODS}
    loads = []  # the machine is shared: its 1-minute load average before each run
    digests = set()
    for _ in range(repeats):
        for method in METHODS:
            loads.append(os.getloadavg()[0])
            measured = run_measured(
                [sys.executable, "-m", "benchmarks.crop_copy", method, kind, url, str(edge)], env
            )
            if measured.returncode != 0:
                raise RuntimeError(f"{method} failed:\n{measured.output[-3000:]}")
            seconds = float(measured.output.rsplit("seconds ", 1)[1].split()[0])
            runs[method].append((seconds, measured.peak_rss))
            if "digest " in measured.output:
                digests.add(measured.output.rsplit("digest ", 1)[1].split()[0])
    if len(digests) != 1:
        raise RuntimeError(f"{kind} {edge}³: the copies disagree on the content: {digests}")
    summary: dict = {
        method: {
            "seconds": statistics.median(s for s, _ in values),
            "min": min(s for s, _ in values),
            "max": max(s for s, _ in values),
            "peak_rss": statistics.median(r for _, r in values),
        }
        for method, values in runs.items()
    }
    summary["load"] = (min(loads), max(loads))
    return summary


def add_rows(results, label: str, edge: int, summary: dict) -> None:
    """Rows for one crop case, with the issue-18 targets."""
    decoded = edge**3
    low, high = summary.pop("load")
    results.add(label, "load average (1 min) before the runs, 2 cores", f"{low:.1f}-{high:.1f}")
    for method, row in summary.items():
        results.add(
            label, f"{method}: time (median of runs; min-max)",
            f"{row['seconds']:.2f} s ({row['min']:.2f}-{row['max']:.2f})",
        )  # fmt: skip
    new, shipped, old_reader, alone = (summary[m] for m in METHODS)
    read_ratio = new["seconds"] / alone["seconds"]
    speedup = shipped["seconds"] / new["seconds"]
    share = new["peak_rss"] / decoded
    results.add(
        label, "new copy / tensorstore read alone", f"{read_ratio:.2f}", "≤ 2", _ok(read_ratio <= 2)
    )
    results.add(
        label, "copy as shipped at 0bdf5de / new copy", f"{speedup:.2f}", "≥ 3", _ok(speedup >= 3)
    )
    results.add(
        label, "old reader, today's writer / new copy",
        f"{old_reader['seconds'] / new['seconds']:.2f}", "(reported)", "",
    )  # fmt: skip
    results.add(
        label, "new copy peak RSS",
        f"{new['peak_rss'] / MB:.0f} MB = {100 * share:.0f} % of decoded",
        "≤ 40 % of decoded", _ok(share <= 0.4),
    )  # fmt: skip


def _ok(met: bool) -> str:
    return "yes" if met else "**no**"


def crop_comparisons(results, tree: Path, http: str, s3: str, env, sizes, repeats: int) -> None:
    """The rows for every crop case: hemibrain-like precomputed over HTTP, zarr on S3."""
    from em_assets_tests.replicas.openorganelle import BUCKET, CONTAINER
    from em_assets_tests.replicas.precomputed import LAYER_PATH

    env = {**env, "AWS_ENDPOINT_URL": s3}
    for edge in sizes.hemibrain_crops:
        summary = compare("precomputed", f"precomputed://{http}/{LAYER_PATH}", edge, env, repeats)
        add_rows(results, f"hemibrain crop copy {edge}³ (unsharded JPEG, HTTP)", edge, summary)
    url = f"s3://{BUCKET}/{CONTAINER}/recon-1/em/fibsem-uint8"
    edge = sizes.openorganelle_crop
    summary = compare("zarr", url, edge, env, repeats)
    add_rows(results, f"openorganelle crop copy {edge}³ (zarr zstd, S3)", edge, summary)


if __name__ == "__main__":
    measure_once(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
