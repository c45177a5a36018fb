"""The transfer engine against a replica server that misbehaves the ways real servers do."""

from __future__ import annotations

import hashlib
import logging
import random
import subprocess
import sys

import pytest
from upath import UPath

from em_assets.transfer.client import HttpClient
from em_assets.transfer.content import TIFF
from em_assets.transfer.engine import StoredFile, fetch_file
from em_assets.transfer.errors import (
    IntegrityError,
    PermanentHTTPError,
    RetriesExhaustedError,
    UnexpectedContentError,
)
from em_assets.transfer.retry import RetryPolicy
from em_assets_tests.replicas.http_server import Fault

PATH = "/data/ stack.tif"
SIZE = 3 * 1024 * 1024 + 123
CHUNK = 64 * 1024


class SleepRecorder:
    """A fake clock: records each wait instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def body() -> bytes:
    return b"II*\x00" + random.Random(1).randbytes(SIZE - 4)


@pytest.fixture
def served(http_replica, body):
    http_replica.put(PATH, body, content_type="image/tiff")
    return http_replica


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def client(sleeps) -> HttpClient:
    return HttpClient(
        connect_timeout_s=2,
        read_timeout_s=0.5,
        policy=RetryPolicy(max_attempts=4, base_delay_s=1.0, max_delay_s=8.0),
        sleep=sleeps,
        rng=random.Random(0),
    )


@pytest.fixture
def target(tmp_path) -> UPath:
    return UPath(tmp_path) / "out" / "stack.tif"


def fetch(client, server, target, **kwargs):
    return fetch_file(
        client,
        server.url(PATH),
        target,
        label="stack.tif",
        log=logging.getLogger("test"),
        expected_format=TIFF,
        chunk_bytes=CHUNK,
        **kwargs,
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def no_partial_left(target: UPath) -> bool:
    """No staging file (`.<name>.<token>.part`) nor resume record is left beside `target`."""
    if not target.parent.exists():
        return True
    return not any(p.name.startswith(f".{target.name}.") for p in target.parent.iterdir())


def test_plain_download_has_right_bytes_and_checksum(client, served, body, target):
    result = fetch(client, served, target)
    assert target.read_bytes() == body
    assert result.sha256 == sha256(body)
    assert result.bytes == SIZE
    assert result.payload_bytes == SIZE == served.state.payload_bytes
    assert result.version.etag and result.version.last_modified
    assert no_partial_left(target)


def test_requests_identify_the_project(client, served, target):
    fetch(client, served, target)
    agents = {h["User-Agent"] for h in served.requests_for(PATH)}
    assert all(agent.startswith("em_assets/") for agent in agents)


def test_dropped_connection_resumes_with_range(client, served, body, target, sleeps):
    served.inject(Fault("cut", after_bytes=CHUNK * 16), PATH)
    result = fetch(client, served, target)
    assert result.sha256 == sha256(body)
    gets = served.requests_for(PATH)
    assert len(gets) == 2
    assert "Range" not in gets[0]
    start = int(gets[1]["Range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= CHUNK * 16
    assert gets[1]["If-Range"] == result.version.etag
    # Resuming re-sends only what was lost, not the whole file.
    assert served.state.payload_bytes <= SIZE + CHUNK
    assert len(sleeps.waits) == 1


def test_503_then_success_backs_off(client, served, body, target, sleeps):
    served.inject(Fault("status", status=503), PATH)
    result = fetch(client, served, target)
    assert result.sha256 == sha256(body)
    assert len(sleeps.waits) == 1
    assert 0.5 <= sleeps.waits[0] <= 1.0  # first backoff: base delay with jitter


def test_backoff_grows_exponentially(client, served, body, target, sleeps):
    served.inject(Fault("status", status=502, times=3), PATH)
    fetch(client, served, target)
    assert len(sleeps.waits) == 3
    for n, wait in enumerate(sleeps.waits):
        assert 0.5 * 2**n <= wait <= 2**n


def test_429_retry_after_is_honoured(client, served, body, target, sleeps):
    served.inject(Fault("status", status=429, retry_after="7"), PATH)
    result = fetch(client, served, target)
    assert result.sha256 == sha256(body)
    assert sleeps.waits == [7.0]


def test_retry_after_on_head_is_honoured_too(client, served, target, sleeps):
    served.inject(Fault("status", status=503, retry_after="3", method="HEAD"), PATH)
    fetch(client, served, target)
    assert sleeps.waits == [3.0]


@pytest.mark.parametrize("status", [401, 403, 404])
def test_refusals_fail_at_once_and_leave_the_earlier_copy(client, served, target, sleeps, status):
    target.parent.mkdir(parents=True)
    target.write_bytes(b"earlier good copy")
    served.inject(Fault("status", status=status), PATH)
    with pytest.raises(PermanentHTTPError) as caught:
        fetch(client, served, target)
    message = str(caught.value)
    assert served.url(PATH) in message and f"last status {status}" in message
    assert "1 attempt" in message
    assert sleeps.waits == []
    assert target.read_bytes() == b"earlier good copy"
    assert no_partial_left(target)


def test_missing_file_names_the_url(client, http_replica, target):
    with pytest.raises(PermanentHTTPError, match="404"):
        fetch(client, http_replica, target)
    assert not target.exists()


def test_200_instead_of_206_restarts_from_zero(client, served, body, target):
    served.inject(Fault("cut", after_bytes=CHUNK * 8), PATH)
    served.inject(Fault("ignore_range"), PATH)
    result = fetch(client, served, target)
    assert result.sha256 == sha256(body)
    assert target.read_bytes() == body
    gets = served.requests_for(PATH)
    assert "Range" in gets[1]
    assert served.state.payload_bytes == CHUNK * 8 + SIZE


def test_206_starting_elsewhere_is_not_trusted(client, served, body, target):
    served.inject(Fault("cut", after_bytes=CHUNK * 8), PATH)
    served.inject(Fault("bad_range"), PATH)
    result = fetch(client, served, target)
    assert target.read_bytes() == body
    assert result.sha256 == sha256(body)
    assert "Range" not in served.requests_for(PATH)[-1]


def test_html_page_with_200_is_refused(client, served, target):
    served.inject(Fault("body", body=b"<!DOCTYPE html><html>Maintenance</html>"), PATH)
    with pytest.raises(UnexpectedContentError, match="HTML"):
        fetch(client, served, target)
    assert not target.exists() and no_partial_left(target)


def test_html_body_labelled_as_binary_is_refused_by_magic_bytes(client, served, target):
    served.inject(
        Fault("body", body=b"<html><body>Error</body></html>", content_type="image/tiff"), PATH
    )
    with pytest.raises(UnexpectedContentError, match="not TIFF: it starts with an HTML page"):
        fetch(client, served, target)
    assert not target.exists() and no_partial_left(target)


def test_body_shorter_than_content_length_is_detected(client, served, target, sleeps):
    served.inject(Fault("cut", after_bytes=1000, times=-1), PATH)
    with pytest.raises(RetriesExhaustedError) as caught:
        fetch(client, served, target)
    assert served.url(PATH) in str(caught.value)
    assert not target.exists()  # the bytes so far stay staged, for the next run to resume


def test_body_truncated_once_resumes_to_the_full_size(client, served, body, target):
    served.inject(Fault("cut", after_bytes=100_000), PATH)
    result = fetch(client, served, target)
    assert result.bytes == SIZE and target.read_bytes() == body


def test_missing_content_length_still_works(client, http_replica, body, target):
    http_replica.put(PATH, body, content_type="image/tiff", send_length=False)
    result = fetch(client, http_replica, target)
    assert target.read_bytes() == body
    assert result.sha256 == sha256(body)


def test_stalled_server_times_out_and_is_retried(client, served, body, target, sleeps):
    served.inject(Fault("stall", seconds=1.5), PATH)
    result = fetch(client, served, target)
    assert result.sha256 == sha256(body)
    assert len(sleeps.waits) == 1


def test_persistent_5xx_gives_up_naming_url_status_and_attempts(client, served, target):
    served.inject(Fault("status", status=500, times=-1), PATH)
    with pytest.raises(RetriesExhaustedError) as caught:
        fetch(client, served, target)
    message = str(caught.value)
    assert served.url(PATH) in message
    assert "last status 500" in message
    assert "4 attempt(s)" in message
    assert not target.exists()


def test_unchanged_source_and_intact_copy_move_zero_payload(client, served, body, target):
    first = fetch(client, served, target)
    served.reset_counters()
    again = fetch(
        client, served, target, previous=StoredFile(first.bytes, first.sha256, first.version)
    )
    assert again.reused and again.payload_bytes == 0
    assert served.state.payload_bytes == 0
    assert served.requests_for(PATH) == []  # only HEAD was asked
    assert target.read_bytes() == body


def test_changed_etag_downloads_again(client, served, target):
    first = fetch(client, served, target)
    new_body = b"II*\x00" + random.Random(2).randbytes(SIZE - 4)
    served.put(PATH, new_body, content_type="image/tiff")
    served.reset_counters()
    again = fetch(
        client, served, target, previous=StoredFile(first.bytes, first.sha256, first.version)
    )
    assert not again.reused
    assert served.state.payload_bytes == SIZE
    assert target.read_bytes() == new_body and again.sha256 == sha256(new_body)
    assert again.version.etag != first.version.etag


def test_locally_corrupted_copy_is_fetched_again(client, served, body, target):
    first = fetch(client, served, target)
    corrupted = bytearray(body)
    corrupted[SIZE // 2] ^= 0xFF
    target.write_bytes(bytes(corrupted))
    again = fetch(
        client, served, target, previous=StoredFile(first.bytes, first.sha256, first.version)
    )
    assert not again.reused and target.read_bytes() == body


def test_body_longer_than_the_announced_size_keeps_nothing(client, served, target):
    served.inject(Fault("cut", after_bytes=CHUNK * 4), PATH)
    served.inject(Fault("short_total", after_bytes=SIZE - 100), PATH)
    with pytest.raises(IntegrityError, match=f"more than the announced {SIZE - 100}"):
        fetch(client, served, target)
    assert not target.exists() and no_partial_left(target)


def test_streams_to_any_fsspec_destination(client, served, body):
    target = UPath("memory://engine-test/out/stack.tif")
    result = fetch(client, served, target)
    assert target.read_bytes() == body and result.sha256 == sha256(body)
    target.fs.rm("/engine-test", recursive=True)


def test_server_without_head_is_asked_once_and_still_downloads(client, served, body, target):
    served.inject(Fault("status", status=405, times=-1, method="HEAD"), PATH)
    remote = client.head(served.url(PATH), what="stack.tif")
    assert not remote.is_known
    result = fetch(client, served, target, remote=remote)
    assert result.sha256 == sha256(body)
    assert len(served.requests_for(PATH, method="HEAD")) == 1  # the probe's, not a second one
    again = fetch(client, served, target, remote=remote,
                  previous=StoredFile(result.bytes, result.sha256, result.version))  # fmt: skip
    assert not again.reused  # without validators, a stored copy cannot be trusted as current


def test_the_transfer_library_imports_without_dagster():
    """A script that only downloads (or the benchmark timing the engine) does not pay for
    Dagster: 1.2 s of the engine's import was `settings` importing `EnvVar` eagerly."""
    probe = "import sys, em_assets.transfer.engine; print('dagster' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
