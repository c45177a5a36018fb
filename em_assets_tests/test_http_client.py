"""The one retry loop, as every caller meets it: documents, and a caller's own `TryAgain`."""

from __future__ import annotations

import json
import logging
import random
import socket

import pytest

from em_assets.transfer.client import HttpClient
from em_assets.transfer.errors import PermanentHTTPError, RetriesExhaustedError
from em_assets.transfer.retry import Attempts, RetryPolicy, TryAgain
from em_assets.transfer.unreachable import SourceUnreachableError
from em_assets_tests.replicas.http_server import Fault

DOC = "/api/entry.json"
ENTRY = {"accession": "EMPIAR-00000", "files": list(range(2000))}


class SleepRecorder:
    """A fake clock: records each wait instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def client(sleeps) -> HttpClient:
    return HttpClient(
        connect_timeout_s=2,
        read_timeout_s=2,
        policy=RetryPolicy(max_attempts=4, base_delay_s=1.0, max_delay_s=8.0),
        sleep=sleeps,
        rng=random.Random(0),
        log=logging.getLogger("test.http"),
    )


@pytest.fixture
def served(http_replica):
    http_replica.put(DOC, json.dumps(ENTRY).encode(), content_type="application/json")
    return http_replica


def test_document_cut_mid_body_is_fetched_again_whole(client, served, sleeps):
    served.inject(Fault("cut", after_bytes=100), DOC)
    assert client.fetch_json(served.url(DOC), what="entry") == ENTRY
    assert len(served.requests_for(DOC)) == 2 and len(sleeps.waits) == 1


def test_document_behind_a_transient_status_is_retried(client, served, sleeps):
    served.inject(Fault("status", status=503, retry_after="7"), DOC)
    assert json.loads(client.fetch_text(served.url(DOC), what="entry")) == ENTRY
    assert sleeps.waits == [7.0]


def test_refused_document_is_not_retried(client, http_replica, sleeps):
    with pytest.raises(PermanentHTTPError, match="entry refused with HTTP 404"):
        client.fetch_text(http_replica.url("/missing.json"), what="entry")
    assert sleeps.waits == []


def test_unreachable_source_gives_up_after_the_budget_saying_so(client, sleeps):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SourceUnreachableError, match=f"could not connect to 127.0.0.1:{port}"):
        client.fetch_text(f"http://127.0.0.1:{port}/entry.json", what="entry")
    assert len(sleeps.waits) == 3  # four attempts, three waits between them


def test_a_callers_try_again_is_retried_with_backoff_and_log_lines(client, sleeps, caplog):
    answers = iter([3, 4, 5])

    def listing(attempts: Attempts) -> int:
        count = next(answers)
        if count < 5:
            raise TryAgain(f"listing names {count} files, the API says 5")
        return count

    with caplog.at_level(logging.WARNING, logger="test.http"):
        assert client.retrying("http://example.invalid/l/", "listing", listing) == 5
    assert len(sleeps.waits) == 2 and 0.5 <= sleeps.waits[0] <= 1.0 <= sleeps.waits[1] <= 2.0
    assert (
        caplog.records[0]
        .getMessage()
        .startswith("listing: listing names 3 files, the API says 5; retry 1 of 3 in ")
    )


def test_a_callers_try_again_ends_the_budget_like_a_request(client, sleeps):
    def never(attempts: Attempts) -> None:
        raise TryAgain("still short")

    with pytest.raises(RetriesExhaustedError, match=r"gave up on listing .* last: still short"):
        client.retrying("http://example.invalid/l/", "listing", never)
    assert len(sleeps.waits) == 3


def test_can_retry_lets_a_caller_keep_a_partial_answer_instead(client, sleeps):
    seen: list[int] = []

    def short_listing(attempts: Attempts) -> list[int]:
        seen.append(attempts.total)
        if attempts.can_retry:
            raise TryAgain("still short")
        return seen

    assert client.retrying("http://example.invalid/l/", "listing", short_listing) == [1, 2, 3, 4]
    assert len(sleeps.waits) == 3
