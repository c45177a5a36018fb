"""A replica HTTP/1.1 file server that speaks what the real servers speak, and misbehaves on cue.

It answers HEAD and GET with `ETag`, `Last-Modified` and `Content-Length`; honours one
`Range` (206 with `Content-Range`, 416 past the end) and `If-Range`; counts the payload
bytes it sends; and injects faults (status codes with `Retry-After`, connections cut
mid-body, 200 instead of 206, foreign bodies). Python's own `http.server` ignores Range,
which would make resume tests meaningless.

Run it as a process for benchmarks or manual mirrors:
    python -m em_assets_tests.replicas.http_server --directory DIR [--port N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import mimetypes
import os
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

PIECE = 1024 * 1024
CONTROL_PATH = "/_replica/counters"
"""GET: the counters as JSON; DELETE: reset them. For a replica running in another process."""


@dataclass
class Resource:
    """One servable body: bytes in memory, or a file on disk (for benchmark-sized bodies)."""

    body: bytes | Path
    content_type: str = "application/octet-stream"
    etag: str = ""
    last_modified: float = field(default_factory=time.time)
    send_length: bool = True

    @property
    def size(self) -> int:
        return len(self.body) if isinstance(self.body, bytes) else self.body.stat().st_size

    def read(self, start: int, length: int) -> bytes:
        if isinstance(self.body, bytes):
            return self.body[start : start + length]
        with self.body.open("rb") as handle:
            handle.seek(start)
            return handle.read(length)


@dataclass
class Fault:
    """A misbehaviour applied to the next `times` matching requests (-1: every request).

    kinds: "status" (answer `status`, with `retry_after`), "cut" (send `after_bytes` of the
    body, then drop the connection), "ignore_range" (200 with the whole body), "bad_range"
    (206 whose Content-Range starts elsewhere), "body" (200 with `body` as `content_type`),
    "stall" (wait `seconds` before answering), "slow" (send the headers, then wait `seconds`
    before the body: a transfer that takes at least that long), "throttle" (send the body at
    `rate` bytes per second, so a run can be killed or overtaken mid-body), "short_range"
    (a 206 whose Content-Range runs to the end but whose body stops `after_bytes` in: a
    partial answer that ends early without an error), "short_total" (a 206 whose
    Content-Range claims the resource is only `after_bytes` long while the whole range is
    sent: a source that changed size under an unchanged ETag), "hold" (send the headers and the
    first `after_bytes` of the body, then wait until the test opens `ReplicaState.gate`).
    """

    kind: str
    times: int = 1
    status: int = 503
    retry_after: str | None = None
    after_bytes: int = 0
    body: bytes = b""
    content_type: str = "text/html"
    seconds: float = 0.0
    rate: float = 0.0
    method: str = "GET"


class ReplicaState:
    """Resources, faults and counters shared by all handler threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.resources: dict[str, Resource] = {}
        self.faults: dict[str | None, list[Fault]] = defaultdict(list)
        self.payload_bytes = 0
        self.payload_by_path: dict[str, int] = defaultdict(int)
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.transfers = 0
        self.max_transfers = 0
        """Bodies being sent at once (from a GET's headers to its last byte), at most."""
        self.directory: Path | None = None
        self.in_flight_bytes = 0
        """Bytes of throttled bodies sent so far whose answer has not finished."""
        self.gate = threading.Event()
        """Opened by a test to let "hold" bodies continue."""
        self.held = 0
        """Bodies waiting at the gate now."""

    def take_fault(self, path: str, method: str) -> Fault | None:
        with self.lock:
            for key in (path, None):
                queue = self.faults.get(key, [])
                for fault in queue:
                    if fault.method == method and fault.times != 0:
                        if fault.times > 0:
                            fault.times -= 1
                        return fault
        return None

    def lookup(self, path: str) -> Resource | None:
        with self.lock:
            found = self.resources.get(path)
        if found is None and self.directory is not None:
            found = self._file_resource(path)
        return found

    def _file_resource(self, path: str) -> Resource | None:
        """A file under the served directory; a directory answers with its `index.*` file."""
        assert self.directory is not None
        root = self.directory.resolve()
        candidate = (root / path.lstrip("/")).resolve()
        if candidate.is_dir():
            candidate = next(iter(sorted(candidate.glob("index.*"))), candidate)
        if not candidate.is_file() or root not in candidate.parents:
            return None
        stat = candidate.stat()
        content_type = mimetypes.guess_type(candidate.name)[0] or "application/octet-stream"
        return Resource(
            candidate,
            content_type=content_type,
            etag=f'"{stat.st_size:x}-{int(stat.st_mtime_ns):x}"',
            last_modified=stat.st_mtime,
        )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ReplicaHTTPServer

    def log_message(self, format: str, *args) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_DELETE(self) -> None:
        if unquote(urlsplit(self.path).path) == CONTROL_PATH:
            self.server.reset_counters()
            self._respond(204, {}, b"", 0)
        else:
            self._respond(405, {}, b"", 0)

    def _serve(self, send_body: bool) -> None:
        state = self.server.state
        path = unquote(urlsplit(self.path).path)
        if path == CONTROL_PATH:
            body = json.dumps(self.server.counters()).encode()
            self._respond(200, {"Content-Type": "application/json"}, body, len(body))
            return
        with state.lock:
            state.requests.append((self.command, path, dict(self.headers.items())))
        try:
            self._answer(state, path, send_body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _answer(self, state: ReplicaState, path: str, send_body: bool) -> None:
        fault = state.take_fault(path, self.command)
        if fault and fault.kind == "stall":
            time.sleep(fault.seconds)
            fault = None
        if fault and fault.kind == "status":
            body = f"<html><body><h1>{fault.status}</h1></body></html>".encode()
            headers = {"Content-Type": "text/html"}
            if fault.retry_after is not None:
                headers["Retry-After"] = fault.retry_after
            self._respond(fault.status, headers, body if send_body else b"", len(body))
            return
        resource = state.lookup(path)
        if resource is None:
            body = b"<html><body><h1>404 Not Found</h1></body></html>"
            self._respond(404, {"Content-Type": "text/html"}, body if send_body else b"", len(body))
            return
        if fault and fault.kind == "body":
            headers = {"Content-Type": fault.content_type, "ETag": resource.etag}
            self._respond(200, headers, fault.body if send_body else b"", len(fault.body))
            return
        self._serve_resource(state, path, resource, fault, send_body)

    def _serve_resource(
        self,
        state: ReplicaState,
        path: str,
        resource: Resource,
        fault: Fault | None,
        send_body: bool,
    ) -> None:
        size = resource.size
        headers = {
            "Content-Type": resource.content_type,
            "ETag": resource.etag,
            "Last-Modified": formatdate(resource.last_modified, usegmt=True),
            "Accept-Ranges": "bytes",
        }
        start, end, status = 0, size - 1, 200
        wanted = _parse_range(self.headers.get("Range"), size)
        if_range = self.headers.get("If-Range")
        range_allowed = if_range is None or if_range in (resource.etag, headers["Last-Modified"])
        if wanted == "unsatisfiable":
            headers["Content-Range"] = f"bytes */{size}"
            self._respond(416, headers, b"", 0)
            return
        if (
            isinstance(wanted, tuple)
            and range_allowed
            and not (fault and fault.kind == "ignore_range")
        ):
            start, end = wanted
            status = 206
            shown_start = start + 1 if fault and fault.kind == "bad_range" else start
            shown_size = fault.after_bytes if fault and fault.kind == "short_total" else size
            headers["Content-Range"] = f"bytes {shown_start}-{end}/{shown_size}"
        length = end - start + 1
        if fault and fault.kind == "short_range" and status == 206:
            length = min(length, fault.after_bytes)
        if not resource.send_length:
            headers["Connection"] = "close"
            self.close_connection = True
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if resource.send_length:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        if not send_body:
            return
        with state.lock:
            state.transfers += 1
            state.max_transfers = max(state.max_transfers, state.transfers)
        try:
            if fault and fault.kind == "slow":
                self.wfile.flush()
                time.sleep(fault.seconds)
            if fault and fault.kind == "hold":
                sent_first = self._send_body(resource, start, min(fault.after_bytes, length))
                self.wfile.flush()
                with state.lock:
                    state.held += 1
                state.gate.wait(timeout=300)
                with state.lock:
                    state.held -= 1
                start, length = start + sent_first, length - sent_first
                with state.lock:
                    state.payload_bytes += sent_first
                    state.payload_by_path[path] += sent_first
            limit = fault.after_bytes if fault and fault.kind == "cut" else length
            rate = fault.rate if fault and fault.kind == "throttle" else 0.0
            sent = self._send_body(resource, start, min(limit, length), rate)
        finally:
            with state.lock:
                state.transfers -= 1
        with state.lock:
            state.payload_bytes += sent
            state.payload_by_path[path] += sent
        if fault and fault.kind == "cut":
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True

    def _send_body(self, resource: Resource, start: int, length: int, rate: float = 0.0) -> int:
        if rate:
            return self._send_throttled(resource, start, length, rate)
        if isinstance(resource.body, Path):
            self.wfile.flush()
            with resource.body.open("rb") as handle:
                return self.connection.sendfile(handle, start, length)
        sent = 0
        while sent < length:
            piece = resource.read(start + sent, min(PIECE, length - sent))
            self.wfile.write(piece)
            sent += len(piece)
        return sent

    def _send_throttled(self, resource: Resource, start: int, length: int, rate: float) -> int:
        """Send in small pieces at `rate` bytes/s, counting each piece as it leaves, so a
        test can watch a transfer's progress from outside."""
        piece_bytes = max(1024, int(rate / 20))
        sent = 0
        state = self.server.state
        try:
            while sent < length:
                piece = resource.read(start + sent, min(piece_bytes, length - sent))
                self.wfile.write(piece)
                self.wfile.flush()
                sent += len(piece)
                with state.lock:
                    state.in_flight_bytes += len(piece)
                time.sleep(len(piece) / rate)
        finally:
            with state.lock:
                state.in_flight_bytes -= sent
        return sent

    def _respond(self, status: int, headers: dict[str, str], body: bytes, length: int) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if body:
            self.wfile.write(body)


def _parse_range(value: str | None, size: int) -> tuple[int, int] | str | None:
    """A single `bytes=` range as inclusive (start, end); 'unsatisfiable'; or None."""
    if not value or not value.startswith("bytes=") or "," in value:
        return None
    first, _, last = value[len("bytes=") :].strip().partition("-")
    if not first:
        if not last.isdigit() or int(last) == 0:
            return None
        return max(0, size - int(last)), size - 1
    if not first.isdigit() or (last and not last.isdigit()):
        return None
    start = int(first)
    if start >= size:
        return "unsatisfiable"
    end = min(int(last), size - 1) if last else size - 1
    return (start, end) if end >= start else None


class ReplicaHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.state = ReplicaState()
        self.thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, path: str) -> str:
        """The URL of a server path, percent-encoded as a client would send it."""
        return self.base_url + quote(path)

    def put(
        self,
        path: str,
        body: bytes | Path,
        content_type: str = "application/octet-stream",
        send_length: bool = True,
    ) -> Resource:
        """Serve `body` at `path` (decoded form); a new body gets a new ETag and date."""
        digest = (
            hashlib.sha256(body).hexdigest()[:16]
            if isinstance(body, bytes)
            else f"{body.stat().st_size:x}-{body.stat().st_mtime_ns:x}"
        )
        with self.state.lock:
            previous = self.state.resources.get(path)
            stamp = time.time()
            if previous is not None and previous.last_modified >= stamp - 1:
                stamp = previous.last_modified + 1  # HTTP dates have one-second resolution
            resource = Resource(body, content_type, f'"{digest}"', stamp, send_length)
            self.state.resources[path] = resource
        return resource

    def inject(self, fault: Fault, path: str | None = None) -> None:
        """Apply `fault` to requests for `path`, or to any path when `path` is None."""
        with self.state.lock:
            self.state.faults[path].append(fault)

    def reset_counters(self) -> None:
        with self.state.lock:
            self.state.payload_bytes = 0
            self.state.payload_by_path.clear()
            self.state.requests.clear()
            self.state.max_transfers = 0

    def counters(self) -> dict:
        with self.state.lock:
            return {
                "payload_bytes": self.state.payload_bytes,
                "payload_by_path": dict(self.state.payload_by_path),
                "requests": len(self.state.requests),
                "max_transfers": self.state.max_transfers,
                "in_flight_bytes": self.state.in_flight_bytes,
            }

    def requests_for(self, path: str, method: str = "GET") -> list[dict[str, str]]:
        with self.state.lock:
            return [h for m, p, h in self.state.requests if p == path and m == method]

    def start(self) -> ReplicaHTTPServer:
        self.thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--directory", type=Path, required=True, help="tree to serve")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = ReplicaHTTPServer(args.port)
    server.state.directory = args.directory
    print(server.base_url, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        os._exit(0)


if __name__ == "__main__":
    main()
