"""Self-contained checks that are one long subprocess each (mypy, the benchmark smoke run),
started as soon as the session is collected so they run on the second core while the rest
of the suite runs on the first; their tests then wait for the result and assert on it.

Why: the suite is one process (two test processes broke the UI tests' shutdown check and
saved little), but these two need no fixture, no replica of ours and nothing another test
changes, so overlapping them only moves their wall time, not what they check. Their tests
are moved to the end of the session, so nothing waits for them early. A test run alone (or
with `-k`) starts its command itself, the same way.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


@dataclass
class EarlyCommand:
    """One command, started at most once per session, with its output kept in a file
    (a pipe nobody reads yet would fill up and stall the process)."""

    argv: list[str]
    cwd: Path
    timeout: float
    process: subprocess.Popen | None = None
    output: IO[str] | None = field(default=None, repr=False)

    def start(self) -> None:
        if self.process is None:
            # Closed in stop(), at the end of the session, not here.
            self.output = tempfile.TemporaryFile("w+")  # noqa: SIM115
            self.process = subprocess.Popen(
                self.argv, cwd=self.cwd, stdout=self.output, stderr=subprocess.STDOUT, text=True
            )

    def result(self) -> tuple[int, str]:
        """The exit status and output, starting the command now if nobody did."""
        self.start()
        assert self.process is not None and self.output is not None
        try:
            returncode = self.process.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        self.output.seek(0)
        return returncode, self.output.read()

    def stop(self) -> None:
        """At the end of the session: nothing outlives it (an interrupted run included)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.output is not None:
            self.output.close()


EARLY: dict[str, EarlyCommand] = {}
"""By "module::test" of the test that asserts on the command (registered on import, which
collection does, so conftest finds every one before the first test runs)."""


def register(module: str, test: str, command: EarlyCommand) -> EarlyCommand:
    return EARLY.setdefault(f"{module}::{test}", command)


def command_of(item) -> EarlyCommand | None:
    module = getattr(item, "module", None)
    return EARLY.get(f"{module.__name__}::{item.originalname}") if module else None


def waiting_last(items: list) -> list:
    """The tests that wait for an early command moved to the end (in their order), so the
    session runs everything else while the commands run, instead of waiting at once."""
    return [i for i in items if command_of(i) is None] + [i for i in items if command_of(i)]


def start_for(items: list) -> None:
    """Start the command of every collected (and not deselected) test that has one."""
    for item in items:
        command = command_of(item)
        if command is not None:
            command.start()


def wait_all() -> None:
    """Let every started command finish, before a test whose own check is timed: the UI
    tests give `dagster dev`'s processes 60 s to exit, and nothing of ours should load the
    machine beside that check. Results are read later."""
    for command in EARLY.values():
        if command.process is not None:
            command.process.wait(timeout=command.timeout)


def stop_all() -> None:
    for command in EARLY.values():
        command.stop()
