"""Run the benchmarks and write `benchmarks/results.md`.

    python -m benchmarks.run            # full sizes: 1 GB and 3 GB files, 512³ and 1000³ crops
    python -m benchmarks.run --smoke    # tiny sizes, only to keep this script working

Replica servers run in their own processes (HTTP with Range for files and precomputed
chunks; moto for S3). Each case runs the real command a user runs, and the table reports
what was measured next to its target.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests
from upath import UPath

from benchmarks import build
from benchmarks.crop_copy import crop_comparisons
from benchmarks.measure import run_measured, timed
from benchmarks.servers import counters, http_replica, reset_counters, s3_replica
from em_assets.transfer.client import HttpClient
from em_assets.transfer.content import TIFF
from em_assets.transfer.engine import fetch_file
from em_assets_tests.replicas.epfl import EPFL_DIRECTORY
from em_assets_tests.replicas.openorganelle import BUCKET, CONTAINER
from em_assets_tests.replicas.precomputed import LAYER_PATH
from em_assets_tests.replicas.s3 import client_for, create_bucket

MB = 1e6
MIB = 1024 * 1024
HERE = Path(__file__).parent


@dataclass(frozen=True)
class Sizes:
    transfer_file: int
    big_file: int | None
    volume_edge: int
    hemibrain_crops: tuple[int, ...]
    openorganelle_edge: int
    openorganelle_crop: int
    graph_crops: dict[str, int] | None
    """Crop sizes for the whole-graph case; None: the assets' defaults (1000³ and 512³)."""


FULL = Sizes(1024 * MIB, 3 * 1024 * MIB, 1024, (512, 1000), 576, 512, None)
SMOKE = Sizes(4 * MIB, None, 128, (64,), 128, 64, {"flyem_hemibrain": 64, "openorganelle_jrc": 64})
STEP_DONE = re.compile(r'Finished execution of step "([^"]+)" in ([\d.]+)(ms|s)')


@dataclass
class Row:
    case: str
    measure: str
    value: str
    target: str = ""
    verdict: str = ""


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)

    def add(self, *cells: str) -> None:
        self.rows.append(Row(*cells))
        print(" | ".join(cells), flush=True)

    def markdown(self) -> str:
        lines = ["| case | measure | value | target | met |", "|---|---|---|---|---|"]
        lines += [
            f"| {r.case} | {r.measure} | {r.value} | {r.target} | {r.verdict} |" for r in self.rows
        ]
        return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def base_env(work: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("EM_") or key == "EM_CROP_PARTITIONS"
    }
    env["CLOUD_VOLUME_DIR"] = str(work / "cloudvolume")
    return env


def dagster(args: list[str], env: dict[str, str], home: Path):
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return run_measured(
        [sys.executable, "-m", "dagster", *args], {**env, "DAGSTER_HOME": str(home)}
    )


def materialize(select: str, config: dict, env: dict[str, str], home: Path):
    result = dagster(
        [
            "asset",
            "materialize",
            "-m",
            "em_assets",
            "--select",
            select,
            "--config-json",
            json.dumps(config),
        ],
        env,
        home,
    )
    if result.returncode != 0:
        raise RuntimeError(f"materialize {select} failed:\n{result.output[-4000:]}")
    return result


# ---------------------------------------------------------------- 1. HTTP file transfer


def _engine(url: str, target: Path) -> None:
    client = HttpClient(log=logging.getLogger("bench"))
    try:
        fetch_file(client, url, UPath(target), label="bench", log=client.log, expected_format=TIFF)
    finally:
        client.close()


def _curl(url: str, target: Path) -> None:
    subprocess.run(["curl", "-sS", "-o", str(target), url], check=True)


def _naive(url: str, target: Path) -> None:
    """How the earlier script collection downloaded: 8 KiB pieces, no checks."""
    with requests.get(url, stream=True, timeout=60) as response, target.open("wb") as out:
        for piece in response.iter_content(8192):
            out.write(piece)


def transfer_case(results: Results, url: str, size: int, scratch: Path, repeats: int) -> None:
    rates = {}
    for name, method in (("engine", _engine), ("curl", _curl), ("naive requests", _naive)):
        if name == "curl" and shutil.which("curl") is None:
            continue
        seconds = []
        for _ in range(repeats):
            target = scratch / f"{name.replace(' ', '_')}.tif"
            target.unlink(missing_ok=True)
            elapsed, _ = timed(method, url, target)
            assert target.stat().st_size == size, f"{name} wrote {target.stat().st_size} bytes"
            seconds.append(elapsed)
            target.unlink()
        rates[name] = size / statistics.median(seconds) / MB
        results.add(
            f"HTTP file {size / MIB:.0f} MiB", f"{name} throughput", f"{rates[name]:.0f} MB/s"
        )
    if "curl" in rates:
        ratio = rates["engine"] / rates["curl"]
        results.add("HTTP file", "engine / curl", f"{ratio:.2f}", "≥ 0.8", verdict(ratio >= 0.8))
        results.add(
            "HTTP file",
            "curl / naive",
            f"{rates['curl'] / rates['naive requests']:.2f}",
            "(reported)",
        )
    results.add(
        "HTTP file",
        "engine / naive",
        f"{rates['engine'] / rates['naive requests']:.2f}",
        "(reported)",
    )


# ---------------------------------------------------------------- 2. EPFL peak memory


def epfl_memory_case(
    results: Results, env: dict[str, str], work: Path, files: dict[str, int]
) -> None:
    for name, size in files.items():
        root = work / f"root-epfl-{name}"
        measured = materialize(
            "epfl_hippocampus",
            {"ops": {"epfl_hippocampus": {"config": {"files": [name]}}}},
            {**env, "EM_ASSETS_ROOT": str(root)},
            work / f"home-epfl-{name}",
        )
        peak = measured.peak_rss / MB
        results.add(
            f"epfl_hippocampus, {size / MIB:.0f} MiB file", "peak RSS (process tree)",
            f"{peak:.0f} MB ({measured.seconds:.1f} s)", "≤ 300 MB", verdict(peak <= 300),
        )  # fmt: skip
        shutil.rmtree(root)


# ---------------------------------------------------------------- 3. crops


def crop_case(
    results: Results, asset: str, edge: int, env: dict[str, str], work: Path, extra: dict
) -> None:
    root = work / f"root-{asset}-{edge}"
    measured = materialize(
        asset,
        {"ops": {asset: {"config": {"crop_size": edge, **extra}}}},
        {**env, "EM_ASSETS_ROOT": str(root)},
        work / f"home-{asset}-{edge}",
    )
    manifest = json.loads((root / f"{asset}.json").read_text())
    decoded = edge**3
    chunks = manifest["crop"]["chunk_count"]
    peak = measured.peak_rss
    share = peak / decoded
    label = f"{asset} {edge}³ ({decoded / MIB:.0f} MiB decoded)"
    results.add(label, "wall time", f"{measured.seconds:.1f} s")
    results.add(label, "chunks per second", f"{chunks / measured.seconds:.0f} ({chunks} chunks)")
    target = "≤ 40 % of decoded" if edge >= 1000 else "(reported)"
    results.add(
        label, "peak RSS (process tree)", f"{peak / MB:.0f} MB = {100 * share:.0f} % of decoded",
        target, verdict(share <= 0.4) if edge >= 1000 else "",
    )  # fmt: skip
    shutil.rmtree(root)


# ---------------------------------------------------------------- 4. whole graph


def step_seconds(output: str) -> dict[str, float]:
    """How long each step took, from the run's own log lines."""
    return {
        step: float(value) / (1000 if unit == "ms" else 1)
        for step, value, unit in STEP_DONE.findall(output)
    }


def graph_case(
    results: Results, env: dict[str, str], work: Path, http: str, crops: dict[str, int] | None
) -> None:
    root = work / "root-graph"
    config = {
        "ops": {name: {"config": {"crop_size": edge}} for name, edge in (crops or {}).items()}
    }
    runs = []
    for attempt in ("first run", "unchanged re-run"):
        reset_counters(http)
        measured = materialize(
            "*consolidated_report",
            config,
            {**env, "EM_ASSETS_ROOT": str(root)},
            work / "home-graph",
        )
        served = counters(http)
        data = sum(
            count
            for path, count in served["payload_by_path"].items()
            if path.endswith((".tif", ".dm3"))
            or "/8_8_8/" in path
            or "_" in path.rsplit("/", 1)[-1]
        )
        steps = step_seconds(measured.output)
        checks = sum(t for name, t in steps.items() if name.count("_") > 1 and "intact" in name)
        runs.append((measured.seconds, data))
        results.add(
            "whole graph",
            f"{attempt}: wall time (steps; blocking checks)",
            f"{measured.seconds:.1f} s ({sum(steps.values()):.1f} s; {checks:.1f} s)",
        )
        results.add("whole graph", f"{attempt}: data bytes served", f"{data:,}")
    (first, _), (again, moved) = runs
    ratio = again / first
    results.add(
        "whole graph", "re-run / first run", f"{ratio:.0%}, {moved} payload bytes",
        "≤ 15 %, 0 bytes", verdict(ratio <= 0.15 and moved == 0),
    )  # fmt: skip


# ---------------------------------------------------------------- main


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(
                line.split(":", 1)[1].strip() for line in info if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; checks the script runs")
    parser.add_argument(
        "--work", type=Path, help="where to build replica data (default: a temp dir)"
    )
    parser.add_argument("--output", type=Path, default=HERE / "results.md")
    parser.add_argument(
        "--crops-only", action="store_true", help="only the crop copy comparisons (issue 18)"
    )
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else FULL
    work = Path(args.work or tempfile.mkdtemp(prefix="em_assets_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    tree = work / "tree"
    results = Results()
    env = base_env(work)

    print(f"building replica data in {work} ...", flush=True)
    if args.crops_only:
        build.write_precomputed(tree, sizes.volume_edge)
        with http_replica(tree) as http, s3_replica() as s3:
            options = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": s3}}
            create_bucket(client_for(s3), BUCKET, public=True, listable=False)
            build.write_zarr_pyramid(
                f"s3://{BUCKET}/{CONTAINER}", options, sizes.openorganelle_edge
            )
            crop_env = {**env, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
            crop_comparisons(results, tree, http, s3, crop_env, sizes, 1 if args.smoke else 3)
        print(results.markdown())
        return
    stacks = {"training.tif": sizes.transfer_file, "training_groundtruth.tif": 4 * MIB}
    if sizes.big_file:
        stacks["volumedata.tif"] = sizes.big_file
    epfl = build.write_epfl(tree, stacks)
    build.write_documents(tree)
    build.write_precomputed(tree, sizes.volume_edge)

    with http_replica(tree) as http, s3_replica() as s3:
        options = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": s3}}
        create_bucket(client_for(s3), BUCKET, public=True, listable=False)
        build.write_zarr_pyramid(f"s3://{BUCKET}/{CONTAINER}", options, sizes.openorganelle_edge)
        env.update(
            {
                "EM_EPFL_URL": http + EPFL_DIRECTORY.replace(" ", "%20"),
                "EM_HEMIBRAIN_URL": f"precomputed://{http}/{LAYER_PATH}",
                "EM_EMPIAR_API_URL": http + "/empiar/api",
                "EM_EBI_FILES_URL": http,
                "EM_IDR_URL": http,
                "AWS_ENDPOINT_URL": s3,
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_SESSION_TOKEN": "bench",
                "AWS_DEFAULT_REGION": "us-east-1",
            }
        )
        url = http + (EPFL_DIRECTORY + "training.tif").replace(" ", "%20")
        transfer_case(results, url, epfl["training.tif"], work, repeats=1 if args.smoke else 3)
        measured = {n: epfl[n] for n in ("training.tif", "volumedata.tif") if n in epfl}
        epfl_memory_case(results, env, work, measured)
        for edge in sizes.hemibrain_crops:
            crop_case(results, "flyem_hemibrain", edge, env, work, {})
        crop_case(results, "openorganelle_jrc", sizes.openorganelle_crop, env, work, {})
        crop_comparisons(results, tree, http, s3, env, sizes, 1 if args.smoke else 3)
        graph_case(results, env, work, http, sizes.graph_crops)

    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    mode = "smoke (tiny sizes: not a measurement)" if args.smoke else "full"
    document = (
        f"# Benchmark results\n\n{stamp}; {machine()}; mode: {mode}.\n\n{results.markdown()}\n"
    )
    analysis = HERE / "analysis.md"  # the hand-written reading of the numbers, kept with them
    if not args.smoke and analysis.exists():
        document += "\n" + analysis.read_text()
    args.output.write_text(document)
    print(f"\nwritten to {args.output}")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
