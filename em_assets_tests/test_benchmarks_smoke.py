"""The benchmark script keeps working: its smoke mode runs every case at tiny sizes.

No timing or memory is asserted here (the full run measures those); only that each case ran
and reported, and that the whole-graph re-run moved no data. The run is one self-contained
process (its own replicas, its own temporary directory), so the session starts it at
collection, beside the other tests (early.py).
"""

import os
import sys
import tempfile
from pathlib import Path

from em_assets_tests.early import EarlyCommand, register

PROJECT = Path(__file__).resolve().parents[1]
OUTPUT = Path(tempfile.gettempdir()) / f"em_assets_bench_smoke_{os.getpid()}.md"
SMOKE = register(
    __name__,
    "test_benchmark_smoke_run_reports_every_case",
    EarlyCommand(
        [sys.executable, "-m", "benchmarks.run", "--smoke", "--output", str(OUTPUT)],
        PROJECT,
        timeout=900,
    ),
)


def test_benchmark_smoke_run_reports_every_case():
    returncode, output = SMOKE.result()
    assert returncode == 0, output[-6000:]
    table = OUTPUT.read_text()
    OUTPUT.unlink()
    for case in ("engine / curl", "epfl_hippocampus", "flyem_hemibrain", "openorganelle_jrc"):
        assert case in table, case
    assert "unchanged re-run: data bytes served | 0 |" in table
    assert "cores" in table and "smoke" in table
