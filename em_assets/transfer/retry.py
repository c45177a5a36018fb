"""The retry policy: which failures are worth retrying and how long to wait before the next try.

Kept free of I/O so the schedule can be tested exactly; the HTTP client applies it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({408, 425, 429})


def is_retryable_status(status: int) -> bool:
    """Timeouts, rate limits and server errors are transient; other 4xx are the caller's fault."""
    return status in RETRYABLE_STATUSES or 500 <= status <= 599


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait according to a `Retry-After` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded in attempts and in any single wait.

    `max_attempts` counts consecutive failed requests that made no progress; a download
    that keeps advancing between dropped connections is not penalised for it, but
    `max_total_attempts` still bounds the whole transfer.
    """

    max_attempts: int = 6
    max_total_attempts: int = 30
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    max_retry_after_s: float = 900.0

    def delay(self, failures: int, retry_after_s: float | None, rng: random.Random) -> float:
        """Wait before retry number `failures` (1 for the first retry)."""
        if retry_after_s is not None:
            # The server said when; waiting less would only earn another 429/503.
            return min(retry_after_s, self.max_retry_after_s)
        backoff = min(self.max_delay_s, self.base_delay_s * 2 ** (failures - 1))
        return backoff * rng.uniform(0.5, 1.0)
