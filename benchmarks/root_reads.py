"""Bytes a command reads from files under one directory, by `strace` of read()/pread().

The content-bytes row's direct measurement. `rchar` minus a code baseline also counts what
no baseline of the code reproduces: Dagster's own run and event-log storage (SQLite files in
DAGSTER_HOME, re-read page by page for every event the run writes) and library data read at
run time (matplotlib's fonts, botocore's service models). In one unchanged re-run itemised
with strace (2026-11-26, benchmark sizes), those were 33 MB and 14 MB of its excess over
the code baseline, against 2.3 MB read from the storage root (0.1 MB once headers were
recorded in the manifest). This counts only files under the root, whatever reads them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

_READ = re.compile(r"^\d+\s+(?:read|pread64)\(\d+<([^>]*)>.*\)\s+=\s+(\d+)$")


def available() -> bool:
    return shutil.which("strace") is not None


def bytes_read_under(
    command: list[str], env: dict[str, str], directory: Path
) -> tuple[int, int, dict[str, int]]:
    """Run `command` under strace; (its exit status, bytes it read from files under
    `directory`, those bytes by file)."""
    prefix = str(directory.resolve()) + os.sep
    with tempfile.TemporaryDirectory() as scratch:
        trace = Path(scratch) / "trace"
        traced = ["strace", "-f", "-qq", "-e", "trace=read,pread64", "-y", "-o", str(trace)]
        done = subprocess.run(
            [*traced, *command], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        by_file: dict[str, int] = {}
        with trace.open(errors="replace") as lines:
            for line in lines:
                found = _READ.match(line.rstrip())
                if found and found.group(1).startswith(prefix):
                    path = found.group(1)
                    by_file[path] = by_file.get(path, 0) + int(found.group(2))
    return done.returncode, sum(by_file.values()), by_file
