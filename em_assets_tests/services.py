"""Real Redis, Postgres and Celery workers as child processes, for the distributed test.

These are not replicas: they are the Debian packages `redis-server` and `postgresql` (what
the README's recipe installs), started on free ports in temporary directories and stopped,
with every process they started, when the test ends.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

PG_USER = "em_dagster"
PG_DB = "dagster"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_bin() -> Path | None:
    """Debian keeps the server binaries out of PATH, under /usr/lib/postgresql/<major>/bin."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def missing_services() -> list[str]:
    """What this machine lacks to run the distributed test, in words for a skip reason."""
    missing = []
    if not shutil.which("redis-server"):
        missing.append("redis-server (apt-get install redis-server)")
    if postgres_bin() is None:
        missing.append("the Postgres server (apt-get install postgresql)")
    elif os.geteuid() == 0 and not _has_user("postgres"):
        missing.append("a 'postgres' user to run the Postgres server as (it refuses root)")
    return missing


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _wait(condition, what: str, timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise TimeoutError(f"{what} not ready after {timeout:.0f} s\n{tail}")
        time.sleep(0.2)


def stop_process_group(process: subprocess.Popen | None, timeout: float = 30) -> None:
    """SIGTERM to the group a process leads (a Celery worker and its pool), then SIGKILL."""
    if process is not None and process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)


class Redis:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.log = directory / "redis.log"
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> Redis:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
             "--save", "", "--appendonly", "no", "--logfile", str(self.log)],
            start_new_session=True,
        )  # fmt: skip
        _wait(self._answers, "redis-server", 30, self.log)
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stored_bytes(self) -> bytes:
        """Everything Redis holds (queued task messages, results), for a search."""
        import redis

        client = redis.Redis(port=self.port)
        found = []
        for key in client.scan_iter():
            found.append(key + client.dump(key))
        return b"\n".join(found)

    def stop(self) -> None:
        stop_process_group(self.process)


class Postgres:
    """A throw-away cluster with password (SCRAM) authentication, as a deployment has."""

    def __init__(self) -> None:
        self.port = free_port()
        self.password = "em-pg-password-5c1d9e"
        self.bin = postgres_bin()
        self.directory = Path(tempfile.mkdtemp(prefix="em-postgres-"))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"

    def _as_owner(self, args: list[str]) -> list[str]:
        # Postgres refuses to run as root; CI runs as root, so run it as Debian's `postgres`.
        return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args

    def start(self) -> Postgres:
        password_file = self.directory / "password"
        password_file.write_text(self.password)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (self.directory, password_file):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        subprocess.run(
            self._as_owner([str(self.bin / "initdb"), "-D", str(self.data), "-U", PG_USER,
                            f"--pwfile={password_file}", "--auth=scram-sha-256", "-E", "UTF8",
                            "--no-sync"]),
            check=True, capture_output=True,
        )  # fmt: skip
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            self._as_owner([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                            "-o", options, "-w", "start"]),
            check=True, capture_output=True,
        )  # fmt: skip
        self._psql(f"CREATE DATABASE {PG_DB}")
        return self

    def _client_env(self) -> dict[str, str]:
        return {**os.environ, "PGPASSWORD": self.password}

    def _psql(self, statement: str) -> None:
        subprocess.run(
            [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER,
             "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", statement],
            env=self._client_env(), check=True, capture_output=True,
        )  # fmt: skip

    def env(self) -> dict[str, str]:
        """The `DAGSTER_PG_*` variables the instance template reads."""
        return {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": PG_USER,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": PG_DB,
        }

    def dump(self) -> bytes:
        """The whole database as SQL: runs, event log, schedules, concurrency slots."""
        return subprocess.run(
            [str(self.bin / "pg_dump"), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER,
             PG_DB],
            env=self._client_env(), check=True, capture_output=True,
        ).stdout  # fmt: skip

    def stop(self) -> int | None:
        """Stop the server and remove its files; return the server's pid, if it ran."""
        pid_file = self.data / "postmaster.pid"
        pid = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
        subprocess.run(
            self._as_owner([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                            "-w", "stop"]),
            check=False, capture_output=True,
        )  # fmt: skip
        shutil.rmtree(self.directory, ignore_errors=True)
        return pid


class CeleryWorker:
    """`celery -A em_assets.deploy.workers worker`, one step at a time, as the README starts it."""

    def __init__(self, name: str, directory: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log = directory / f"worker-{name}.log"
        self.env = env
        self.process: subprocess.Popen | None = None

    def start(self) -> CeleryWorker:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "em_assets.deploy.workers", "worker",
                 "--hostname", f"{self.name}@%h", "--concurrency", "1", "--loglevel", "INFO",
                 "--without-mingle", "--without-gossip"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        return self

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"worker {self.name} exited at start-up:\n{tail}")
            return b"ready." in self.log.read_bytes()

        _wait(ready, f"worker {self.name}", 180, self.log)

    def pids(self) -> set[int]:
        """The worker and its pool's processes, where the steps run."""
        assert self.process is not None, "the worker was not started"
        parent = psutil.Process(self.process.pid)
        return {parent.pid, *(child.pid for child in parent.children(recursive=True))}

    def stop(self) -> set[int]:
        """Stop the worker and its pool; return their pids to check none is left."""
        pids = self.pids() if self.process is not None and self.process.poll() is None else set()
        stop_process_group(self.process)
        return pids
