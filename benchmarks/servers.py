"""Replica servers in their own processes, so their work does not count against ours."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from em_assets_tests.replicas.http_server import CONTROL_PATH


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=2)
            return
        except (requests.ConnectionError, requests.Timeout):
            # A server still starting on a loaded machine may accept and not yet answer.
            time.sleep(0.2)
    raise TimeoutError(f"no server at {url}")


@contextmanager
def http_replica(tree: Path) -> Iterator[str]:
    """The HTTP replica serving `tree`; yields its base URL."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "em_assets_tests.replicas.http_server",
         "--directory", str(tree), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base + CONTROL_PATH)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def counters(base: str) -> dict:
    return requests.get(base + CONTROL_PATH, timeout=10).json()


def reset_counters(base: str) -> None:
    requests.delete(base + CONTROL_PATH, timeout=10)


@contextmanager
def s3_replica() -> Iterator[str]:
    """moto's S3 server; yields its endpoint URL."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ),
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait(endpoint)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=30)
