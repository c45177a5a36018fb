"""One HTTP session for all sources: identification, timeouts, and retries by the policy.

Every request goes through the one retry loop (`retry.retrying`): `send` is one try, saying
which failures are transient. Small documents (JSON, listings) are read whole by
`fetch_document`; large files go through `engine.fetch_file`, which resumes mid-body.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, TypeVar

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from em_assets.logger import Logger
from em_assets.transfer.content import describe_head
from em_assets.transfer.errors import (
    IncompleteBodyError,
    PermanentHTTPError,
    UnexpectedContentError,
)
from em_assets.transfer.retry import (
    Attempts,
    RetryPolicy,
    TryAgain,
    is_retryable_status,
    parse_retry_after,
    retrying,
)
from em_assets.transfer.unreachable import root_cause

T = TypeVar("T")

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


@dataclass(frozen=True)
class Document:
    """A small document fetched whole (JSON, a listing): its bytes and the answer's headers."""

    url: str
    status: int
    headers: CaseInsensitiveDict[str]
    content: bytes

    def text(self) -> str:
        """The body decoded as the server's Content-Type says (as `requests` would)."""
        encoding = requests.utils.get_encoding_from_headers(self.headers) or "utf-8"
        return self.content.decode(encoding, errors="replace")


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

    def attempts(self, url: str, what: str) -> Attempts:
        """A fresh budget for one logical request, waiting and logging as this client does."""
        return Attempts(self.policy, url, what, sleep=self.sleep, rng=self.rng, log=self.log)

    def retrying(self, url: str, what: str, attempt: Callable[[Attempts], T]) -> T:
        """Call `attempt` until it returns, within this client's retry budget.

        The public way to retry something the HTTP layer cannot judge (a listing shorter
        than the API's count, say): `attempt` raises `TryAgain(reason)` to be called again
        after the policy's backoff, with the same log line and the same give-up rule
        (`RetriesExhaustedError`) as every request; `Attempts.can_retry` tells it whether
        one more `TryAgain` would still be retried.
        """
        return retrying(self.attempts(url, what), attempt)

    def send(
        self,
        method: str,
        url: str,
        attempts: Attempts,
        headers: Mapping[str, str] | None = None,
        ok_statuses: frozenset[int] = frozenset(),
    ) -> requests.Response:
        """One try of a retried request, for use inside `retrying`: the streamed response when
        its status is a success (or in `ok_statuses`), `TryAgain` when the connection failed
        or the status is transient, `PermanentHTTPError` when retrying cannot help."""
        try:
            response = self.open(method, url, headers, stream=True)
        except TRANSIENT_ERRORS as error:
            raise TryAgain(root_cause(error), error=error) from error
        status = response.status_code
        if status < 300 or status in ok_statuses:
            return response
        response.close()
        if is_retryable_status(status):
            raise TryAgain(
                f"HTTP {status} {response.reason}",
                status=status,
                retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
            )
        raise PermanentHTTPError(
            f"{attempts.what} refused with HTTP {status} {response.reason}; "
            "not retried (check the URL or the access rights)",
            url=url,
            status=status,
            attempts=attempts.total,
        )

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
        ok_statuses: frozenset[int] = frozenset(),
    ) -> requests.Response:
        """A request retried by the policy; its body is left unread for the caller to close."""
        return self.retrying(
            url, what, lambda attempts: self.send(method, url, attempts, headers, ok_statuses)
        )

    def fetch_document(
        self, url: str, *, what: str, headers: Mapping[str, str] | None = None
    ) -> Document:
        """A small document read whole; a body cut short is retried like a failed request."""

        def attempt(attempts: Attempts) -> Document:
            response = self.send("GET", url, attempts, headers)
            with response:
                try:
                    body = response.raw.read(MAX_DOCUMENT_BYTES + 1, decode_content=True)
                    _check_complete(response, body)
                except TRANSIENT_ERRORS as error:
                    raise TryAgain(f"body cut short ({type(error).__name__}: {error})") from error
            if len(body) > MAX_DOCUMENT_BYTES:
                raise UnexpectedContentError(
                    f"{what}: document larger than {MAX_DOCUMENT_BYTES} bytes",
                    url=url,
                    status=response.status_code,
                    attempts=attempts.total,
                )
            return Document(url, response.status_code, response.headers, body)

        return self.retrying(url, what, attempt)

    def head(self, url: str, *, what: str) -> RemoteVersion:
        """The resource's validators; none known when the server does not answer HEAD."""
        response = self.request("HEAD", url, what=f"HEAD {what}", ok_statuses=frozenset({405, 501}))
        response.close()
        if response.status_code in (405, 501):
            return RemoteVersion()
        return RemoteVersion.from_headers(response.headers)

    def fetch_text(self, url: str, *, what: str) -> str:
        return self.fetch_document(url, what=what).text()

    def fetch_json(self, url: str, *, what: str) -> Any:
        """A JSON document; an HTML page or other non-JSON answer is refused by name."""
        document = self.fetch_document(url, what=what, headers={"Accept": "application/json"})
        try:
            return json.loads(document.content)
        except ValueError as error:
            raise UnexpectedContentError(
                f"{what}: expected JSON but got {describe_head(document.content)}",
                url=url,
                status=document.status,
            ) from error


def _check_complete(response: requests.Response, body: bytes) -> None:
    announced = response.headers.get("Content-Length")
    if announced and announced.isdigit() and len(body) < int(announced):
        raise IncompleteBodyError(f"{len(body)} of {announced} bytes")
