"""The retry policy as a pure function: which failures are retried and how long each wait is."""

import random
from datetime import UTC, datetime

import pytest

from em_assets.transfer.retry import RetryPolicy, is_retryable_status, parse_retry_after


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_transient_statuses_are_retried(status):
    assert is_retryable_status(status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 416])
def test_client_errors_are_not_retried(status):
    assert not is_retryable_status(status)


def test_retry_after_in_seconds():
    assert parse_retry_after("120") == 120.0


def test_retry_after_as_http_date():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0


def test_retry_after_in_the_past_means_now():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-5"])
def test_unusable_retry_after_is_ignored(value):
    assert parse_retry_after(value) is None


def test_retry_after_wins_over_backoff_but_is_capped():
    policy = RetryPolicy(max_retry_after_s=60)
    rng = random.Random(0)
    assert policy.delay(1, 12.0, rng) == 12.0
    assert policy.delay(1, 3600.0, rng) == 60.0


def test_backoff_doubles_with_jitter_and_is_capped():
    policy = RetryPolicy(base_delay_s=2.0, max_delay_s=10.0)
    rng = random.Random(0)
    for failures, ceiling in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 10.0), (9, 10.0)]:
        waits = {policy.delay(failures, None, rng) for _ in range(50)}
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(waits) > 1  # jittered, so parallel clients do not retry in lockstep
