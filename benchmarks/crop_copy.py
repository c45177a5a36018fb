"""Crop copy, new (tensorstore reads and writes) against old (cloud-volume or zarr-python
reads, zarr-python writes), and tensorstore reading the same region alone (the read limit
on this machine).

Each measurement is one process (`python -m benchmarks.crop_copy METHOD KIND URL EDGE`),
so peak RSS is the copy's own; runs of the three methods are interleaved.
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from upath import UPath

from benchmarks.measure import run_measured
from em_assets.crops.chunk_writer import ZarrBlockWriter
from em_assets.crops.copy import copy_crop
from em_assets.crops.geometry import Box, blocks
from em_assets.crops.ome_zarr import ImageSpec, create_image
from em_assets.crops.resource import CropCopy

METHODS = (
    "new copy (tensorstore read + write)",
    "old copy (cloud-volume or zarr-python read, zarr-python write)",
    "tensorstore read alone",
)
MB = 1e6


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
                url, mip=0, fill_missing=False, bounded=True, progress=False, cache=False,
                parallel=1, provenance={},
            )  # fmt: skip
        (x0, y0, z0), (x1, y1, z1) = box.offset, box.end
        data = local.volume[x0:x1, y0:y1, z0:z1]
        return np.ascontiguousarray(np.asarray(data)[..., 0].transpose(2, 1, 0)), 0

    return read


def measure_once(method: str, kind: str, url: str, edge: int) -> None:
    level = _level(kind, url)
    crop = Box(level.bounds.offset, (edge, edge, edge))
    copier = CropCopy()
    block = copier.block(level.chunk)
    started = time.monotonic()
    if method == METHODS[2]:
        with ThreadPoolExecutor(copier.workers) as pool:
            voxels = sum(a.size for a, _ in pool.map(level.read_counted, blocks(crop, block)))
        assert voxels == edge**3
        seconds = time.monotonic() - started
    else:
        new = method == METHODS[0]
        read = level.read_counted if new else _old_reader(kind, url, level)
        with tempfile.TemporaryDirectory() as scratch:
            spec = ImageSpec(
                "bench", (edge,) * 3, level.chunk[::-1], str(level.dtype), (8.0,) * 3, (0.0,) * 3
            )
            output = create_image(UPath(scratch) / "crop.ome.zarr", spec)
            writer = None if new else ZarrBlockWriter(output)  # None: the copy's own choice
            log = logging.getLogger("bench")
            copy_crop(read, crop, level.chunk, block, output, log, "bench", copier.workers, writer)
            seconds = time.monotonic() - started  # deleting the scratch copy is not copying
    print(f"seconds {seconds:.3f}")


def compare(kind: str, url: str, edge: int, env: dict[str, str], repeats: int = 3) -> dict:
    """Medians and ranges of wall time and peak RSS per method, runs interleaved."""
    runs: dict[str, list[tuple[float, int]]] = {m: [] for m in METHODS}
    loads = []  # the machine is shared: its 1-minute load average before each run
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
    new, old, alone = (summary[m] for m in METHODS)
    read_ratio = new["seconds"] / alone["seconds"]
    speedup = old["seconds"] / new["seconds"]
    share = new["peak_rss"] / decoded
    results.add(
        label, "new copy / tensorstore read alone", f"{read_ratio:.2f}", "≤ 2", _ok(read_ratio <= 2)
    )
    results.add(label, "old copy / new copy", f"{speedup:.2f}", "≥ 3", _ok(speedup >= 3))
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
