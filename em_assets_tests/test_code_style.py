"""Lint, formatting and types run with the tests, so the README's one test command keeps
them true."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from em_assets_tests.early import EarlyCommand, register

PROJECT = Path(__file__).resolve().parents[1]
TREES = ["em_assets", "em_assets_tests", "benchmarks"]
IGNORE_WITHOUT_REASON = re.compile(r"#\s*type:\s*ignore(?!\[[\w,-]+\]  # \S)")
MYPY = register(
    __name__, "test_mypy", EarlyCommand([sys.executable, "-m", "mypy"], PROJECT, timeout=900)
)


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff(command: list[str]) -> None:
    ruff = shutil.which("ruff")
    assert ruff, "ruff is a dev dependency: pip install -e '.[dev,distributed]'"
    done = subprocess.run(
        [ruff, *command, *TREES], cwd=PROJECT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_mypy() -> None:
    """mypy as configured in pyproject.toml ([tool.mypy]: the files, the strictness, the
    untyped libraries). Its cache (.mypy_cache, not committed) makes a rerun take seconds;
    a first run reads the typed libraries (Dagster, numpy, zarr) once, about 45 s of CPU,
    which is why the session starts it at collection, beside the other tests (early.py)."""
    returncode, output = MYPY.result()
    assert returncode == 0, output[-8000:]


def test_every_type_ignore_names_its_code_and_reason() -> None:
    """`# type: ignore[code]  # why`: a bare ignore silences errors nobody has read."""
    bare = [
        f"{path.relative_to(PROJECT)}:{number}: {line.strip()}"
        for tree in TREES
        for path in sorted((PROJECT / tree).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if IGNORE_WITHOUT_REASON.search(line)
    ]
    assert bare == [], "\n".join(bare)
