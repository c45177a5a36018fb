"""Progress lines for long transfers: frequent enough to reassure, rare enough to read."""

from __future__ import annotations

import time
from collections.abc import Callable

from em_assets.logger import Logger

MIB = 1024 * 1024


def human_bytes(count: float) -> str:
    """1536 -> '1.5 KiB': sizes as people read them, from bytes to TiB."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if abs(count) < 1024:
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


class Progress:
    """Logs bytes, percent and throughput at most every `interval_s` seconds, and at the end."""

    def __init__(
        self,
        label: str,
        total: int | None,
        log: Logger,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.log = log
        self.interval_s = interval_s
        self.clock = clock
        self.started = clock()
        self.last_report = self.started
        self.done = 0
        self.moved = 0

    def restart(self, total: int | None) -> None:
        """Forget progress after the server ignored a resume and the body starts over."""
        self.total = total
        self.done = 0

    def advance(self, nbytes: int) -> None:
        self.done += nbytes
        self.moved += nbytes
        now = self.clock()
        if now - self.last_report >= self.interval_s:
            self.last_report = now
            self.log.info(self.line(now))

    def finish(self) -> None:
        self.log.info(self.line(self.clock()) + " - done")

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.moved / elapsed / 1e6
        if self.total:
            percent = 100 * self.done / self.total
            amount = f"{human_bytes(self.done)} of {human_bytes(self.total)} ({percent:.0f}%)"
        else:
            amount = f"{human_bytes(self.done)} (size unknown)"
        return f"{self.label}: {amount} at {rate:.1f} MB/s"
