"""A source that cannot be reached, said once, in words a person can act on.

A refused connection surfaces as a chain of five wrapped exceptions (requests, urllib3,
aiohttp, the socket), each with its own traceback, none naming what to check. Here it
becomes one error: the host, the URL, the attempts made, and what to look at — the network,
a proxy, or the `EM_*` variable that points at a mirror.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from em_assets.settings import ALL_SETTINGS
from em_assets.transfer.errors import RetriesExhaustedError


class SourceUnreachableError(RetriesExhaustedError):
    """No connection could be made to a source, after the retry budget."""


def root_cause(error: BaseException) -> str:
    """The innermost cause of a wrapped connection error, e.g. "Connection refused"."""
    seen: set[int] = set()
    while id(error) not in seen:
        seen.add(id(error))
        inner = error.__cause__ or error.__context__
        if inner is None:
            break
        error = inner
    return f"{type(error).__name__}: {error}"


def _host(url: str) -> str:
    inner = url.removeprefix("precomputed://").removeprefix("zarr://")
    parts = urlsplit(inner)
    return parts.netloc or parts.path.split("/", 1)[0]


def variables_for(url: str) -> list[str]:
    """The settings that point at the same host as `url` (the ones that choose a mirror)."""
    host = _host(url)
    return [s.name for s in ALL_SETTINGS if s.name != "EM_ASSETS_ROOT" and _host(s.value()) == host]


def advice(urls: list[str]) -> str:
    """What to check: the network, a proxy, and the variables that choose these sources."""
    names = sorted({name for url in urls for name in variables_for(url)})
    mirror = f", or point {' / '.join(names)} at a reachable mirror" if names else ""
    proxy = " (HTTPS_PROXY / HTTP_PROXY are set)" if _proxy_set() else ""
    return f"Check this machine's network connection and proxy{proxy}{mirror}."


def _proxy_set() -> bool:
    return any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY"))


def _where(url: str) -> str:
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if url.startswith("s3://") and endpoint:
        return f"bucket {_host(url)} at {endpoint} (AWS_ENDPOINT_URL)"
    return _host(url)


def unreachable(what: str, url: str, attempts: int, cause: BaseException) -> SourceUnreachableError:
    return SourceUnreachableError(
        f"{what}: could not connect to {_where(url)} ({root_cause(cause)}). {advice([url])}",
        url=url,
        attempts=attempts,
    )


def _connection_errors() -> tuple[type[BaseException], ...]:
    """What the readers below the project raise when nothing answers (imported lazily:
    they are heavy, and not every process loads them)."""
    import requests

    kinds: list[type[BaseException]] = [requests.ConnectionError, ConnectionError]
    try:
        import aiohttp

        kinds.append(aiohttp.ClientConnectorError)
    except ImportError:  # pragma: no cover - aiohttp comes with s3fs and gcsfs
        pass
    try:
        from botocore.exceptions import EndpointConnectionError

        kinds.append(EndpointConnectionError)
    except ImportError:  # pragma: no cover - botocore comes with s3fs
        pass
    return tuple(kinds)


@contextmanager
def reaching(what: str, urls: list[str]) -> Iterator[None]:
    """Run library calls that contact `urls` (a dataset's sources); a failure to connect
    becomes one readable `SourceUnreachableError` (the library's own retries have run).
    The library does not say which of the URLs failed, so all are named."""
    try:
        yield
    except _connection_errors() as error:
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        via = (
            f" via the S3 endpoint {endpoint} (AWS_ENDPOINT_URL)"
            if endpoint and any(url.startswith("s3://") for url in urls)
            else ""
        )
        raise SourceUnreachableError(
            f"{what}: a connection failed{via} ({root_cause(error)}). {advice(urls)}",
            url=", ".join(urls),
        ) from None
