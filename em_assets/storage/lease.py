"""One writer per asset and root: the lease a run holds while it materializes an asset.

The schedule, the sensor and a person in the UI can all start runs of the same asset on
the same root, and runs die without cleaning up (out of memory, eviction, `kill -9`).
Staging, the final moves, stale-store clean-up and the manifest write all assume they are
the only writer of `{root}/{asset}`; the lease makes that true.

- On a local root it is an OS file lock (`filelock`, `flock`) on `{root}/.leases/{asset}.lock`:
  the kernel drops it when the holder dies, however it dies, so a killed run never blocks
  the asset. Who holds it is written beside it, for the messages of those who wait.
- On `s3://` and `gs://` it is an object `{root}/.leases/{asset}.json` created only if absent
  (S3 `If-None-Match: *`, GCS `ifGenerationMatch=0`): the stores' own atomic primitive. The
  holder renews it from a heartbeat thread; a record not renewed for `ttl_s` (judged by the
  store's own last-modified time) belongs to a dead holder and is taken over by deleting
  exactly that version (`If-Match` / `ifGenerationMatch`) and creating a new one, so two
  waiters can never both win.

The lease is taken by the asset body and released by the IO manager once the manifest is
stored (see `storage.io_manager`), so the manifest write and the orphan clean-up are covered.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from fsspec.asyn import sync
from upath import UPath

from em_assets.logger import Logger
from em_assets.storage.staging import is_object_store, write_atomically

LEASE_DIRECTORY = ".leases"
POLL_S = 0.5


class LeaseBusyError(RuntimeError):
    """Another run holds the asset's lease and did not release it in time."""


class LeaseLostError(RuntimeError):
    """This run's lease expired and was taken over; it must not write its results."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: enough for a person to find the run and the process."""

    run_id: str
    host: str
    pid: int
    started_at: str

    @classmethod
    def this_process(cls, run_id: str) -> Holder:
        return cls(run_id, socket.gethostname(), os.getpid(), datetime.now(UTC).isoformat())

    @classmethod
    def from_json(cls, text: str | bytes) -> Holder | None:
        try:
            document = json.loads(text)
            return cls(**{key: document[key] for key in ("run_id", "host", "pid", "started_at")})
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        return f"run {self.run_id} on {self.host} (pid {self.pid}, since {self.started_at})"


class Lease(ABC):
    """Exclusive right to write one asset under one root, for one run."""

    def __init__(self, root: UPath, asset: str, run_id: str, wait_s: float, log: Logger) -> None:
        self.root = root
        self.asset = asset
        self.holder = Holder.this_process(run_id)
        self.wait_s = wait_s
        self.log = log
        self.directory = root / LEASE_DIRECTORY

    def acquire(self) -> None:
        """Take the lease, waiting up to `wait_s` for another holder, then failing by name."""
        deadline = time.monotonic() + self.wait_s
        announced = False
        while not self._try_acquire():
            other = self._current_holder()
            if not announced:
                who = other.describe() if other else "another run"
                self.log.info(
                    f"{self.asset}: waiting up to {self.wait_s:.0f} s for {who}, which is "
                    f"writing this asset under {self.root}"
                )
                announced = True
            if time.monotonic() >= deadline:
                raise self._busy(other)
            time.sleep(POLL_S)
        self.log.info(f"{self.asset}: lease taken ({self.holder.describe()})")

    def _busy(self, other: Holder | None) -> LeaseBusyError:
        who = other.describe() if other else "another run (holder not recorded)"
        return LeaseBusyError(
            f"{self.asset} under {self.root} is being written by {who}; waited "
            f"{self.wait_s:.0f} s. Let that run finish (or stop it in the UI), then materialize "
            f"again; raise EM_LEASE_WAIT_S to wait longer. {self._expiry_rule()}"
        )

    @abstractmethod
    def _try_acquire(self) -> bool: ...

    @abstractmethod
    def _current_holder(self) -> Holder | None: ...

    @abstractmethod
    def _expiry_rule(self) -> str: ...

    @abstractmethod
    def assert_held(self) -> None:
        """Raise `LeaseLostError` if this run no longer holds the lease."""

    @abstractmethod
    def release(self) -> None: ...


class LocalLease(Lease):
    """An OS lock: freed by the kernel when the holding process exits, however it exits."""

    def __init__(self, root: UPath, asset: str, run_id: str, wait_s: float, log: Logger) -> None:
        from filelock import FileLock

        super().__init__(root, asset, run_id, wait_s, log)
        os.makedirs(self.directory.path, exist_ok=True)
        self.lock = FileLock(os.path.join(self.directory.path, f"{asset}.lock"))
        self.holder_path = self.directory / f"{asset}.holder.json"

    def _try_acquire(self) -> bool:
        from filelock import Timeout

        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            return False
        write_atomically(self.holder_path, json.dumps(asdict(self.holder)).encode())
        return True

    def _current_holder(self) -> Holder | None:
        try:
            return Holder.from_json(self.holder_path.read_bytes())
        except OSError:
            return None

    def _expiry_rule(self) -> str:
        return "A lock whose process has died is freed by the operating system."

    def assert_held(self) -> None:
        if not self.lock.is_locked:
            raise LeaseLostError(f"{self.asset}: this run's lock under {self.root} was released")

    def release(self) -> None:
        self.lock.release(force=True)


class ObjectStoreLease(Lease):
    """A lease object created only if absent, renewed by a heartbeat, taken over when stale."""

    def __init__(
        self,
        root: UPath,
        asset: str,
        run_id: str,
        wait_s: float,
        log: Logger,
        ttl_s: float,
    ) -> None:
        super().__init__(root, asset, run_id, wait_s, log)
        self.ttl_s = ttl_s
        self.record = _ConditionalObject(self.directory / f"{asset}.json")
        self.version: str | None = None
        self.lost: str | None = None
        self._renewed_at = 0.0
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def _body(self) -> bytes:
        return json.dumps({**asdict(self.holder), "ttl_s": self.ttl_s}).encode()

    def _try_acquire(self) -> bool:
        version = self.record.create(self._body())
        if version is None:
            current = self.record.read()
            if current is None:
                return False  # released in between: the next poll may win
            body, stale_version, age_s = current
            if age_s <= self.ttl_s:
                return False
            holder = Holder.from_json(body)
            self.log.warning(
                f"{self.asset}: the lease of {holder.describe() if holder else 'an unknown run'} "
                f"was not renewed for {age_s:.0f} s (limit {self.ttl_s:.0f} s); its holder is "
                "presumed dead and the lease is taken over"
            )
            if not self.record.delete(stale_version):
                return False  # renewed or taken over by someone else meanwhile
            version = self.record.create(self._body())
            if version is None:
                return False
        self.version = version
        self._renewed_at = time.monotonic()
        self._beat = threading.Thread(target=self._heartbeat, name="em-lease", daemon=True)
        self._beat.start()
        return True

    def _heartbeat(self) -> None:
        """Renew every quarter of the TTL. A store that fails a renewal is tried again at the
        next beat; once no renewal has succeeded for a whole TTL, another run may have taken
        the lease over, so it counts as lost (never a silently dead heartbeat)."""
        while not self._stop.wait(self.ttl_s / 4):
            assert self.version is not None
            try:
                renewed = self.record.replace(self._body(), self.version)
            except Exception as error:
                # Whatever the store's client raised: gcsfs answers some failures with
                # ValueError or its own HttpError, not OSError, and an exception escaping
                # here would end the heartbeat with the lease still looking held.
                if time.monotonic() - self._renewed_at > self.ttl_s:
                    self.lost = f"it could not be renewed for {self.ttl_s:.0f} s ({error})"
                    return
                continue
            if renewed is None:
                self.lost = "its lease record was replaced by another run"
                return
            self.version = renewed
            self._renewed_at = time.monotonic()

    def _current_holder(self) -> Holder | None:
        current = self.record.read()
        return Holder.from_json(current[0]) if current else None

    def _expiry_rule(self) -> str:
        return (
            f"A lease not renewed for {self.ttl_s:.0f} s (its holder died) is taken over "
            "automatically."
        )

    def assert_held(self) -> None:
        if self.lost:
            raise LeaseLostError(
                f"{self.asset}: this run lost its lease under {self.root} ({self.lost}); "
                "nothing more is written. Materialize again."
            )

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        if self.version is not None and not self.lost:
            self.record.delete(self.version)
        self.version = None


class _ConditionalObject:
    """Create-if-absent, replace-if-unchanged and delete-if-unchanged of one small object.

    Versions are S3 ETags or GCS generations. s3fs and gcsfs expose exclusive creation
    (`mode="create"`); the conditional replace and delete go to the store's API directly.
    """

    def __init__(self, path: UPath) -> None:
        self.path = path
        self.fs: Any = path.fs
        self.gcs = path.protocol in ("gs", "gcs")
        self.bucket, _, self.key = path.path.partition("/")

    def create(self, body: bytes) -> str | None:
        """Write `body` if the object does not exist; its version, or None if it existed or
        another writer's conditional write of it was in progress (S3's 409)."""
        try:
            self.fs.pipe_file(self.path.path, body, mode="create")
        except (FileExistsError, OSError) as error:
            if _is_precondition_failure(error) or _is_conditional_conflict(error):
                return None
            raise
        self.fs.invalidate_cache(self.path.path)
        current = self.read()
        return current[1] if current else None

    def read(self) -> tuple[bytes, str, float] | None:
        """Body, version and age in seconds by the store's clock-stamped modification time."""
        self.fs.invalidate_cache(self.path.path)
        try:
            info = self.fs.info(self.path.path)
            body = self.fs.cat_file(self.path.path)
        except FileNotFoundError:
            return None
        version = str(info.get("generation") if self.gcs else info.get("ETag", "")).strip('"')
        modified = info.get("updated") if self.gcs else info.get("LastModified")
        if isinstance(modified, str):
            modified = datetime.fromisoformat(modified.replace("Z", "+00:00"))
        age = (datetime.now(UTC) - modified).total_seconds() if modified else float("inf")
        return body, version, age

    def replace(self, body: bytes, version: str) -> str | None:
        """Overwrite only the given version; the new version, or None if it had changed."""
        try:
            if self.gcs:
                sync(
                    self.fs.loop,
                    self.fs._call,
                    "POST",
                    f"{self.fs._location}/upload/storage/v1/b/{self.bucket}/o",
                    uploadType="media",
                    name=self.key,
                    ifGenerationMatch=version,
                    data=body,
                )
            else:
                self.fs.call_s3(
                    "put_object", Bucket=self.bucket, Key=self.key, Body=body, IfMatch=version
                )
        except (FileNotFoundError, OSError) as error:
            if _is_precondition_failure(error) or isinstance(error, FileNotFoundError):
                return None
            raise
        current = self.read()
        return current[1] if current else None

    def delete(self, version: str) -> bool:
        """Delete only the given version; False if the object had changed or gone, or
        another writer's conditional write of it was in progress (S3's 409)."""
        try:
            if self.gcs:
                sync(
                    self.fs.loop,
                    self.fs._call,
                    "DELETE",
                    f"b/{self.bucket}/o/{self.key}",
                    ifGenerationMatch=version,
                )
            else:
                self.fs.call_s3("delete_object", Bucket=self.bucket, Key=self.key, IfMatch=version)
        except (FileNotFoundError, OSError) as error:
            if (
                isinstance(error, FileNotFoundError)
                or _is_precondition_failure(error)
                or _is_conditional_conflict(error)  # not now: the next poll reads it again
            ):
                return False
            raise
        self.fs.invalidate_cache(self.path.path)
        return True


def _is_precondition_failure(error: BaseException) -> bool:
    """A 412 from either store. gcsfs raises FileExistsError for it; s3fs an OSError whose
    message ("At least one of the pre-conditions you specified did not hold") names no
    status, with botocore's error, code PreconditionFailed, in its chain."""
    return _in_chain(
        error,
        lambda seen: (
            isinstance(seen, FileExistsError) or _s3_error(seen, "PreconditionFailed", 412)
        ),
    )


def _is_conditional_conflict(error: BaseException) -> bool:
    """S3's 409 ConditionalRequestConflict: another conditional write of the same key was in
    progress. S3 asks for a retry; for a create or a delete that is the next poll, for a
    renewal the next heartbeat (which only a 412 ends)."""
    return _in_chain(error, lambda seen: _s3_error(seen, "ConditionalRequestConflict", 409))


def _in_chain(error: BaseException, test: Callable[[BaseException], bool]) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if test(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _s3_error(seen: BaseException, code: str, status: int) -> bool:
    """botocore's error (s3fs keeps it in the chain) with this code or HTTP status."""
    response = getattr(seen, "response", None)
    return isinstance(response, dict) and (
        response.get("Error", {}).get("Code") == code
        or response.get("ResponseMetadata", {}).get("HTTPStatusCode") == status
    )


def open_lease(
    root: UPath, asset: str, run_id: str, wait_s: float, ttl_s: float, log: Logger
) -> Lease:
    """The lease kind that fits the root: an OS lock locally, a lease object on a bucket."""
    if is_object_store(root):
        return ObjectStoreLease(root, asset, run_id, wait_s, log, ttl_s)
    if root.protocol in ("", "file", "local"):
        return LocalLease(root, asset, run_id, wait_s, log)
    return _ProcessLease(root, asset, run_id, wait_s, log)


_process_locks: dict[tuple[str, str], threading.Lock] = {}


class _ProcessLease(Lease):
    """For roots only one process can see (`memory://`): a lock within the process."""

    def __init__(self, root: UPath, asset: str, run_id: str, wait_s: float, log: Logger) -> None:
        super().__init__(root, asset, run_id, wait_s, log)
        self.lock = _process_locks.setdefault((str(root), asset), threading.Lock())

    def _try_acquire(self) -> bool:
        return self.lock.acquire(blocking=False)

    def _current_holder(self) -> Holder | None:
        return None

    def _expiry_rule(self) -> str:
        return ""

    def assert_held(self) -> None:
        if not self.lock.locked():
            raise LeaseLostError(f"{self.asset}: lease under {self.root} was released")

    def release(self) -> None:
        if self.lock.locked():
            self.lock.release()


_held: dict[tuple[str, str], Lease] = {}
"""Leases whose asset body succeeded, waiting for the IO manager to store the manifest."""


@contextmanager
def writing(lease: Lease) -> Iterator[None]:
    """Hold `lease` around an asset body: released if the body fails, otherwise handed to
    `finish_writing`, which the IO manager calls once the manifest is stored."""
    key = (str(lease.root), lease.asset)
    leftover = _held.pop(key, None)
    if leftover is not None:  # a step in this process that failed after its body
        leftover.release()
    lease.acquire()
    try:
        yield
    except BaseException:
        lease.release()
        raise
    _held[key] = lease


def finish_writing(root: UPath, asset: str) -> Lease | None:
    """The lease an asset body left held for its manifest write, if any (the caller releases)."""
    return _held.pop((str(root), asset), None)
