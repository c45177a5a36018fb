"""Measuring a command: wall time, the peak RSS of its whole process tree, and the bytes it
read (`rchar` from /proc/<pid>/io, every byte passed through read()/pread(), from disk or
page cache alike), summed over the tree."""

from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import psutil

SAMPLE_S = 0.02
TREE_REFRESH_S = 0.2
"""Listing a process's descendants scans all of /proc (hundreds of processes on a shared
machine): done every 200 ms, not at every 20 ms sample, to keep the sampler's own CPU off
the 2 cores it is measuring."""


@dataclass(frozen=True)
class Measurement:
    seconds: float
    peak_rss: int
    returncode: int
    output: str
    bytes_read: int = 0
    """rchar summed over the process tree (each process at its last reading)."""


def tree_rss(process: psutil.Process) -> int:
    """Resident memory of a process and all its descendants, now."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += member.memory_info().rss
    return total


def rchar(pid: int) -> int | None:
    """Bytes process `pid` has read so far, or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def run_measured(command: list[str], env: dict[str, str], cwd: str | None = None) -> Measurement:
    """Run `command`, sampling the process tree's RSS and rchar every 20 ms until it exits;
    the main process's final rchar is read after it exits, before it is reaped."""
    started = time.monotonic()
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    peak = 0
    read: dict[int, int] = {}
    watched = psutil.Process(process.pid)
    output: list[str] = []
    stdout = process.stdout
    assert stdout is not None  # stdout=PIPE
    reader = threading.Thread(target=lambda: output.append(stdout.read()), daemon=True)
    reader.start()
    members: list[psutil.Process] = [watched]
    listed = 0.0
    while True:
        if time.monotonic() - listed >= TREE_REFRESH_S:
            try:
                members = [watched, *watched.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            listed = time.monotonic()
        total = 0
        for member in members:
            with suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                total += member.memory_info().rss
            count = rchar(member.pid)
            if count is not None:
                read[member.pid] = max(read.get(member.pid, 0), count)
        peak = max(peak, total)
        # Exited (a zombie until reaped): stop sampling, read its last rchar, then reap.
        if os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
            break
        time.sleep(SAMPLE_S)
    final = rchar(process.pid)
    if final is not None:
        read[process.pid] = max(read.get(process.pid, 0), final)
    process.wait()
    reader.join()
    seconds = time.monotonic() - started
    return Measurement(seconds, peak, process.returncode, "".join(output), sum(read.values()))


def timed(function, *args, **kwargs) -> tuple[float, object]:
    started = time.monotonic()
    result = function(*args, **kwargs)
    return time.monotonic() - started, result


def spread(values: list[float], fmt: str = "{:.1f}") -> str:
    """`median (min-max, n runs)` of repeated measurements."""
    middle = statistics.median(values)
    if len(values) == 1:
        return f"{fmt.format(middle)} (1 run)"
    low, high = min(values), max(values)
    return f"{fmt.format(middle)} ({fmt.format(low)} to {fmt.format(high)}, {len(values)} runs)"
