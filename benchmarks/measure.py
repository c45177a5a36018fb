"""Measuring a command: wall time and the peak RSS of its whole process tree."""

from __future__ import annotations

import subprocess
import threading
import time
from contextlib import suppress
from dataclasses import dataclass

import psutil

SAMPLE_S = 0.02


@dataclass(frozen=True)
class Measurement:
    seconds: float
    peak_rss: int
    returncode: int
    output: str


def tree_rss(process: psutil.Process) -> int:
    """Resident memory of a process and all its descendants, now."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += member.memory_info().rss
    return total


def run_measured(command: list[str], env: dict[str, str], cwd: str | None = None) -> Measurement:
    """Run `command`, sampling the process tree's RSS every 20 ms until it exits."""
    started = time.monotonic()
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    peak = 0
    watched = psutil.Process(process.pid)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.append(process.stdout.read()), daemon=True)
    reader.start()
    while process.poll() is None:
        try:
            peak = max(peak, tree_rss(watched))
        except psutil.NoSuchProcess:
            break
        time.sleep(SAMPLE_S)
    process.wait()
    reader.join()
    return Measurement(time.monotonic() - started, peak, process.returncode, "".join(output))


def timed(function, *args, **kwargs) -> tuple[float, object]:
    started = time.monotonic()
    result = function(*args, **kwargs)
    return time.monotonic() - started, result
