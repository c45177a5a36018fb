"""The retry policy and the one loop that applies it: which failures are worth retrying, how
long to wait before the next try, and when to give up.

Kept free of I/O (the client hands in its sleep, randomness and log) so the schedule can be
tested exactly; what counts as a transient HTTP failure is the client's to say.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from em_assets.logger import Logger
from em_assets.transfer.errors import RetriesExhaustedError
from em_assets.transfer.unreachable import unreachable

T = TypeVar("T")

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


class TryAgain(Exception):
    """Raised by one try to ask `retrying` for another, within the budget.

    `status` and `retry_after_s` come from an HTTP answer; `error` is the connection error
    when no answer came at all, so an exhausted budget can say the source was unreachable.
    """

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
        error: BaseException | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after_s = retry_after_s
        self.error = error


class Attempts:
    """The tries of one logical request: counts them, waits between them, gives up in time.

    The waiting, the randomness and the log are handed in (the HTTP client's), so the
    schedule stays testable without a clock.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        url: str,
        what: str,
        *,
        sleep: Callable[[float], None],
        rng: random.Random,
        log: Logger,
    ) -> None:
        self.policy = policy
        self.url = url
        self.what = what
        self.sleep = sleep
        self.rng = rng
        self.log = log
        self.total = 0
        self.consecutive_failures = 0
        self.last_status: int | None = None

    def progressed(self) -> None:
        """Bytes arrived since the last failure: the connection is worth persisting with."""
        self.consecutive_failures = 0

    @property
    def can_retry(self) -> bool:
        """Whether a `TryAgain` raised now would be retried rather than end the budget.

        For a caller that would rather keep a partial answer than fail (a listing that
        stays short, say): it retries while this holds and accepts what it has after.
        """
        return (
            self.consecutive_failures + 1 < self.policy.max_attempts
            and self.total < self.policy.max_total_attempts
        )

    def wait_or_give_up(self, again: TryAgain) -> None:
        """Record a failed try and sleep before the next, or raise if out of budget.

        When every try failed to connect at all, the error says so in one sentence with what
        to check; the wrapped library exceptions are not chained (they say nothing more).
        """
        self.consecutive_failures += 1
        if again.status is not None:
            self.last_status = again.status
        if not (
            self.consecutive_failures < self.policy.max_attempts
            and self.total < self.policy.max_total_attempts
        ):
            if again.error is not None and self.last_status is None:
                raise unreachable(self.what, self.url, self.total, again.error) from None
            raise RetriesExhaustedError(
                f"gave up on {self.what} after repeated failures; last: {again.reason}",
                url=self.url,
                status=self.last_status,
                attempts=self.total,
            ) from None
        wait = self.policy.delay(self.consecutive_failures, again.retry_after_s, self.rng)
        self.log.warning(
            f"{self.what}: {again.reason}; retry {self.consecutive_failures} of "
            f"{self.policy.max_attempts - 1} in {wait:.1f} s ({self.url})"
        )
        self.sleep(wait)


def retrying(attempts: Attempts, attempt: Callable[[Attempts], T]) -> T:
    """The one retry loop: call `attempt` until it returns, waiting after each `TryAgain`.

    Every HTTP request goes through it (`HttpClient.request`, `fetch_document` and the
    engine's resumed GETs), so they share one budget rule and one wording of the log lines.
    Any other exception from `attempt` ends the loop at once.
    """
    while True:
        attempts.total += 1
        try:
            return attempt(attempts)
        except TryAgain as again:
            attempts.wait_or_give_up(again)
