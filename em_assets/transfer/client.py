"""One HTTP session for all sources: identification, timeouts, and retries by the policy.

Small documents (JSON, listings) are fetched whole with `request`; large files go
through `engine.fetch_file`, which uses `open` and `Attempts` to resume mid-body.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter

from em_assets.transfer.content import describe_head
from em_assets.transfer.errors import (
    IncompleteBodyError,
    PermanentHTTPError,
    RetriesExhaustedError,
    UnexpectedContentError,
)
from em_assets.transfer.progress import Logger
from em_assets.transfer.retry import RetryPolicy, is_retryable_status, parse_retry_after
from em_assets.transfer.unreachable import root_cause, unreachable

USER_AGENT = (
    f"em_assets/{version('em_assets')} (EM dataset fetcher; Dagster assets) "
    f"python-requests/{requests.__version__}"
)
MAX_DOCUMENT_BYTES = 32 * 1024 * 1024

# Failures of the connection itself (as opposed to an HTTP answer) that are worth retrying.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    urllib3.exceptions.HTTPError,  # raised unwrapped by raw reads: ProtocolError, ReadTimeoutError
    IncompleteBodyError,
)


@dataclass(frozen=True)
class RemoteVersion:
    """What a server says about a resource's identity: enough to tell if it changed."""

    etag: str | None = None
    last_modified: str | None = None
    content_length: int | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RemoteVersion:
        length = headers.get("Content-Length")
        return cls(
            etag=headers.get("ETag"),
            last_modified=headers.get("Last-Modified"),
            content_length=int(length) if length and length.isdigit() else None,
        )

    @property
    def is_known(self) -> bool:
        return bool(self.etag or self.last_modified)

    def same_as(self, other: RemoteVersion) -> bool:
        """True only when both sides carry a validator and every validator present agrees."""
        if not (self.is_known and other.is_known):
            return False
        pairs = [
            (self.etag, other.etag),
            (self.last_modified, other.last_modified),
            (self.content_length, other.content_length),
        ]
        return all(a == b for a, b in pairs if a is not None and b is not None)


class Attempts:
    """The tries of one logical request: counts them, waits between them, gives up in time."""

    def __init__(self, client: HttpClient, url: str, what: str) -> None:
        self.client = client
        self.url = url
        self.what = what
        self.total = 0
        self.consecutive_failures = 0
        self.last_status: int | None = None

    def started(self) -> None:
        self.total += 1

    def progressed(self) -> None:
        """Bytes arrived since the last failure: the connection is worth persisting with."""
        self.consecutive_failures = 0

    def failed(
        self,
        reason: str,
        status: int | None = None,
        retry_after_s: float | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Record a transient failure and sleep before the next try, or raise if out of budget.

        When every try failed to connect at all, the error says so in one sentence with what
        to check; the wrapped library exceptions are not chained (they say nothing more).
        """
        policy = self.client.policy
        self.consecutive_failures += 1
        if status is not None:
            self.last_status = status
        if (
            self.consecutive_failures >= policy.max_attempts
            or self.total >= policy.max_total_attempts
        ):
            if error is not None and self.last_status is None:
                raise unreachable(self.what, self.url, self.total, error) from None
            raise RetriesExhaustedError(
                f"gave up on {self.what} after repeated failures; last: {reason}",
                url=self.url,
                status=self.last_status,
                attempts=self.total,
            ) from None
        wait = policy.delay(self.consecutive_failures, retry_after_s, self.client.rng)
        self.client.log.warning(
            f"{self.what}: {reason}; retry {self.consecutive_failures} of "
            f"{policy.max_attempts - 1} in {wait:.1f} s ({self.url})"
        )
        self.client.sleep(wait)

    def refuse(self, response: requests.Response) -> PermanentHTTPError:
        return PermanentHTTPError(
            f"{self.what} refused with HTTP {response.status_code} {response.reason}; "
            "not retried (check the URL or the access rights)",
            url=self.url,
            status=response.status_code,
            attempts=self.total,
        )


class HttpClient:
    """A requests session with the project's identity, timeouts and retry policy."""

    def __init__(
        self,
        *,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 60.0,
        policy: RetryPolicy | None = None,
        user_agent: str = USER_AGENT,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        log: Logger | None = None,
        pool_size: int = 16,
    ) -> None:
        self.timeout = (connect_timeout_s, read_timeout_s)
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.log: Logger = log or logging.getLogger("em_assets.transfer")
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        # Bodies are hashed as received: transparent decompression would hash other bytes.
        self.session.headers["Accept-Encoding"] = "identity"
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def open(
        self, method: str, url: str, headers: Mapping[str, str] | None = None, stream: bool = True
    ) -> requests.Response:
        """One request, no retries: the caller decides what a failure means."""
        return self.session.request(
            method,
            url,
            headers=dict(headers or {}),
            stream=stream,
            timeout=self.timeout,
            allow_redirects=True,
        )

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
        read_body: bool = True,
        ok_statuses: frozenset[int] = frozenset(),
    ) -> requests.Response:
        """A request retried by the policy; with `read_body`, body failures are retried too."""
        attempts = Attempts(self, url, what)
        while True:
            attempts.started()
            try:
                response = self.open(method, url, headers, stream=True)
            except TRANSIENT_ERRORS as error:
                attempts.failed(root_cause(error), error=error)
                continue
            status = response.status_code
            if status < 300 or status in ok_statuses:
                if not read_body:
                    return response
                try:
                    body = response.raw.read(MAX_DOCUMENT_BYTES + 1, decode_content=True)
                    _check_complete(response, body)
                except TRANSIENT_ERRORS as error:
                    response.close()
                    attempts.failed(f"body cut short ({type(error).__name__}: {error})")
                    continue
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise UnexpectedContentError(
                        f"{what}: document larger than {MAX_DOCUMENT_BYTES} bytes",
                        url=url,
                        status=status,
                        attempts=attempts.total,
                    )
                response._content = body
                return response
            response.close()
            if is_retryable_status(status):
                attempts.failed(
                    f"HTTP {status} {response.reason}",
                    status=status,
                    retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
                )
                continue
            raise attempts.refuse(response)

    def head(self, url: str, *, what: str) -> RemoteVersion:
        """The resource's validators; none known when the server does not answer HEAD."""
        response = self.request(
            "HEAD", url, what=f"HEAD {what}", read_body=False, ok_statuses=frozenset({405, 501})
        )
        response.close()
        if response.status_code in (405, 501):
            return RemoteVersion()
        return RemoteVersion.from_headers(response.headers)

    def fetch_text(self, url: str, *, what: str) -> str:
        response = self.request("GET", url, what=what)
        return response.content.decode(response.encoding or "utf-8", errors="replace")

    def fetch_json(self, url: str, *, what: str) -> Any:
        """A JSON document; an HTML page or other non-JSON answer is refused by name."""
        response = self.request("GET", url, what=what, headers={"Accept": "application/json"})
        try:
            return json.loads(response.content)
        except ValueError as error:
            raise UnexpectedContentError(
                f"{what}: expected JSON but got {describe_head(response.content)}",
                url=url,
                status=response.status_code,
            ) from error


def _check_complete(response: requests.Response, body: bytes) -> None:
    announced = response.headers.get("Content-Length")
    if announced and announced.isdigit() and len(body) < int(announced):
        raise IncompleteBodyError(f"{len(body)} of {announced} bytes")
