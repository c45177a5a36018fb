"""The GCS emulator (gcp-storage-emulator) as a writable `gs://` root.

gcsfs reads STORAGE_EMULATOR_HOST for its endpoint, and must be imported with
GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false, or it probes every bucket over gRPC and waits a
minute per operation against an emulator (conftest sets it before anything imports gcsfs).

The emulator ignores request preconditions; real GCS honours `ifGenerationMatch` on uploads
and deletes (https://cloud.google.com/storage/docs/request-preconditions: 0 means "only if
absent", a mismatch answers 412 conditionNotMet). The leases on gs:// roots rely on them,
so this replica adds them, atomically, to the emulator's upload and delete handlers.

It can also fail: while `GcsReplica.failing(status, message)` is in force every request is
answered with that error, as GCS answers during an outage or once a permission is revoked.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any

from gcp_storage_emulator import server as emulator
from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects
from gcp_storage_emulator.server import create_server

Handler = Callable[..., Any]
_CONDITIONAL = threading.Lock()
"""Held from a precondition's check to the end of its write: check and write are one step."""
CONDITION_NOT_MET = {
    "error": {
        "code": 412,
        "message": "At least one of the pre-conditions you specified did not hold.",
        "errors": [{"reason": "conditionNotMet", "domain": "global", "locationType": "header"}],
    }
}


def _object_name(request: Any) -> str:
    """An upload names its object in the query, or in its JSON or multipart metadata."""
    if "object_id" in request.params:
        return request.params["object_id"]
    if "name" in request.query:
        return request.query["name"][0]
    data = request.data if isinstance(request.data, dict) else {}
    return (data.get("meta") or data).get("name", "")


def _generation(storage: Any, bucket: str, name: str) -> str:
    try:
        return str(storage.get_file_obj(bucket, name)["generation"])
    except NotFound:
        return "0"


def _honouring_preconditions(handler: Handler) -> Handler:
    def conditional(request: Any, response: Any, storage: Any, *args: Any, **kwargs: Any) -> Any:
        wanted = request.query.get("ifGenerationMatch")
        if not wanted:
            return handler(request, response, storage, *args, **kwargs)
        with _CONDITIONAL:
            found = _generation(storage, request.params["bucket_name"], _object_name(request))
            if found != wanted[0]:
                response.status = HTTPStatus.PRECONDITION_FAILED
                response.json(CONDITION_NOT_MET)
                return None
            return handler(request, response, storage, *args, **kwargs)

    return conditional


_FAILING: dict[str, Any] = {}
"""The error every request gets while set (status, message): one emulator per process."""


def _failing_when_told(handle: Handler) -> Handler:
    def maybe_failing(router: Any, method: str) -> Any:
        if not _FAILING:
            return handle(router, method)
        response = emulator.Response(router._request_handler)
        response.status = HTTPStatus(_FAILING["status"])
        response.json({"error": {"code": _FAILING["status"], "message": _FAILING["message"]}})
        response.close()
        return None

    return maybe_failing


def _add_failures() -> None:
    if not getattr(emulator.Router.handle, "can_fail", False):
        emulator.Router.handle = _failing_when_told(emulator.Router.handle)  # type: ignore[method-assign]  # the emulator has no hook for faults
        emulator.Router.handle.can_fail = True  # type: ignore[attr-defined]  # a marker, once per process


def _add_preconditions() -> None:
    """Wrap the emulator's upload and delete handlers, wherever its router finds them."""
    if getattr(objects.insert, "honours_preconditions", False):
        return
    wrapped = {objects.insert: _honouring_preconditions(objects.insert)}
    wrapped[objects.delete] = _honouring_preconditions(objects.delete)
    for function in wrapped.values():
        function.honours_preconditions = True  # type: ignore[attr-defined]  # a marker, once per process
    emulator.HANDLERS = tuple(
        (regex, {method: wrapped.get(h, h) for method, h in handlers.items()})
        for regex, handlers in emulator.HANDLERS
    )
    objects.insert = wrapped[objects.insert]  # the router's fallback for bare upload paths


class GcsReplica:
    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        logging.getLogger("gcp_storage_emulator").setLevel(logging.ERROR)
        _add_preconditions()
        _add_failures()
        self.server = create_server("127.0.0.1", self.port, in_memory=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GcsReplica:
        self.server.start()
        return self

    def stop(self) -> None:
        _FAILING.clear()
        self.server.stop()

    @contextmanager
    def failing(self, status: int, message: str) -> Iterator[None]:
        """Every request answered with `status` and `message` until the block ends."""
        _FAILING.update(status=status, message=message)
        try:
            yield
        finally:
            _FAILING.clear()
