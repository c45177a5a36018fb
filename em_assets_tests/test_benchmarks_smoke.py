"""The benchmark script keeps working: its smoke mode runs every case at tiny sizes.

No timing or memory is asserted here (the full run measures those); only that each case ran
and reported, and that the whole-graph re-run moved no data.
"""

import subprocess
import sys


def test_benchmark_smoke_run_reports_every_case(tmp_path, pytestconfig):
    output = tmp_path / "results.md"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke", "--output", str(output)],
        cwd=pytestconfig.rootpath, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    table = output.read_text()
    for case in ("engine / curl", "epfl_hippocampus", "flyem_hemibrain", "openorganelle_jrc"):
        assert case in table, case
    assert "unchanged re-run: data bytes served | 0 |" in table
    assert "cores" in table and "smoke" in table
