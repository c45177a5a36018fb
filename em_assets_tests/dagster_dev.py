"""`dagster dev` as a user starts it, in a subprocess: start, wait until ready, stop cleanly."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil
import requests

INSTANCE_YAML = """\
telemetry:
  enabled: false
nux:
  enabled: false
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class DagsterDev:
    process: subprocess.Popen
    port: int
    log: Path
    log_handle: IO[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60
        )
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def wait_until_ready(self, asset_count: int, timeout: float = 180) -> None:
        """Until the web server answers and the code location shows its assets."""
        deadline = time.monotonic() + timeout
        query = "{ assetNodes { assetKey { path } } }"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dagster dev exited early:\n{self.log.read_text()[-4000:]}")
            try:
                if len(self.graphql(query)["assetNodes"]) >= asset_count:
                    return
            except (requests.ConnectionError, requests.HTTPError, AssertionError):
                pass
            time.sleep(1)
        raise TimeoutError(
            f"dagster dev not ready after {timeout} s:\n{self.log.read_text()[-4000:]}"
        )

    def stop(self, timeout: float = 150, children_timeout: float = 150) -> list[str]:
        """Ctrl-C, wait, and describe (pid and command) any process it started that is still
        alive; those are killed.

        Ctrl-C in a terminal reaches the whole foreground process group, so every process
        `dagster dev` started (webserver, daemon, code servers and their gRPC servers) gets
        SIGINT at once, as here. The slow stops seen after full test sessions were not
        Dagster's: `dagster dev` had inherited an ignored SIGINT (see AS_FROM_A_TERMINAL)
        and never began its shutdown. The signal to each started process and the long
        waits below date from before that was found; they cost nothing when all stop."""
        started = psutil.Process(self.process.pid).children(recursive=True)
        os.killpg(self.process.pid, signal.SIGINT)
        # Code servers run in sessions of their own (a fresh-clone CI run found one
        # `dagster code-server start --heartbeat` alive 60 s after the group's Ctrl-C): they
        # would only exit at their heartbeat timeout. Each process started gets it too.
        for process in started:
            with contextlib.suppress(psutil.Error):
                process.send_signal(signal.SIGINT)
        # dagster dev waits up to 60 s for its webserver, then 60 s for its daemon, killing
        # either one that does not stop, and only then shuts its code servers down: killed
        # sooner, it leaves them to their heartbeat timeouts.
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
        # A code server that misses its client's heartbeats shuts down after its heartbeat
        # timeout (45 s for `code-server start`, 30 s for its `api grpc` child), checked
        # once per timeout: up to about twice that, plus a loaded machine's delay.
        _, alive = psutil.wait_procs(started, timeout=children_timeout)
        leftovers = [process for process in alive if not _exited(process)]
        described = [_describe(process) for process in leftovers]
        for process in leftovers:  # do not leak them into the next test
            # SIGABRT first: under PYTHONFAULTHANDLER each prints every thread's stack into
            # the log, which the failing test shows (where it was stuck).
            with contextlib.suppress(psutil.Error):
                process.send_signal(signal.SIGABRT)
        _, still = psutil.wait_procs(leftovers, timeout=10)
        for process in still:
            with contextlib.suppress(psutil.Error):
                process.kill()
        self.log_handle.close()
        return described


def _describe(process: psutil.Process) -> str:
    try:
        return f"{process.pid}: {' '.join(process.cmdline())}"
    except psutil.Error:
        return f"{process.pid}: (gone)"


def _exited(process: psutil.Process) -> bool:
    """Gone, or a zombie: a dead child of `dagster dev` is reparented to whatever reaps
    orphans here, which may be slow to collect it (seen under two test processes)."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


AS_FROM_A_TERMINAL = """
import os, signal, sys
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
signal.signal(signal.SIGINT, signal.SIG_DFL)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
"""
"""Replaced by `python -m dagster dev ...` in the same process, with Ctrl-C delivered and
handled as in a shell. A child inherits an ignored SIGINT (and a blocked one) through exec,
and Python then installs no KeyboardInterrupt handler, so `dagster dev` would ignore
Ctrl-C and, since it maps SIGTERM to its SIGINT handler, SIGTERM too. After a full test
session (alone: not) its log looked like that: the daemon, which sets its own handlers,
stopped at once; `dagster dev` never logged the interrupt and was killed at the timeout.
The log's first line records how the test process treated SIGINT when it started it."""


def _sigint_state() -> str:
    """How this process treats SIGINT, as its children would inherit it (for the log)."""
    status = Path("/proc/self/status")
    masks = ""
    if status.exists():
        fields = dict(
            line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
        )
        masks = f", SigBlk {fields.get('SigBlk', '?')}, SigIgn {fields.get('SigIgn', '?')}"
    return f"test process SIGINT handler {signal.getsignal(signal.SIGINT)!r}{masks}"


def start_dagster_dev(workdir: Path, home: Path, env: dict[str, str]) -> DagsterDev:
    """Start `dagster dev` in `workdir` (which holds workspace.yaml), no flags but the port."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    port = free_port()
    log = home / "dagster_dev.log"
    log_handle = log.open("w")
    log_handle.write(f"# {_sigint_state()}\n")
    log_handle.flush()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            AS_FROM_A_TERMINAL,
            "-m",
            "dagster",
            "dev",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ],
        cwd=workdir,
        # PYTHONFAULTHANDLER: a process that will not stop can be made to print its stacks.
        env={**env, "DAGSTER_HOME": str(home), "PYTHONFAULTHANDLER": "1"},
        stdout=log_handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return DagsterDev(process, port, log, log_handle)
