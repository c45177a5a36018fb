"""Fingerprints: deciding "unchanged" from a stat or a listing, without reading content.

The tools that keep large corpora in sync do the same: DVC and git-annex key a stored hash by
inode, size and mtime; dandi-cli's fscacher by (mtime_ns, ctime_ns, size, inode); S3 and GCS
objects carry an ETag / generation that changes whenever the object is written.

A fingerprint is recorded beside a sha256 (or voxel digest) only once that digest is known to
describe the bytes the fingerprint was taken of: right after a verified write, or around a
full verification (taken before and after; kept only if both agree). A later check that finds
the same fingerprint trusts the digest; any difference means a full verification.

Racy writes (git's "racy git", fscacher's rule): a write in the same timestamp tick as the
fingerprint would leave size and mtime as they were. So a local fingerprint is trusted only
when its newest mtime is older, by more than the filesystem's timestamp granularity, than
the moment it was taken; otherwise it is recorded but not trusted, and the next check reads
the content. Granularity is judged from the timestamps themselves: whole seconds (FAT, some
network filesystems) get 2 s; sub-second ones get 50 ms, several kernel ticks (the Linux
file-time clock advances once per tick, at most 10 ms at HZ=100). Object-store fingerprints
have no such window: every write makes a new ETag or generation.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

from upath import UPath

from em_assets.storage.staging import is_local, is_object_store

COARSE_MARGIN_NS = 2_000_000_000
FINE_MARGIN_NS = 50_000_000
SETTLE_WAIT_LIMIT_NS = 200_000_000
"""Right after a write, wait out at most this much of the racy window (fine clocks only)."""

_WHEN = ("taken_at_ns",)
"""Fields that say when a fingerprint was taken, not what it describes."""

Fingerprint = dict[str, Any]


def take(path: UPath) -> Fingerprint | None:
    """The fingerprint of a stored file or directory tree (a crop's array), or None when
    the path is absent or its storage has nothing to fingerprint by."""
    try:
        if is_local(path):
            return _local(path.path)
        if is_object_store(path):
            return _object(path)
    except FileNotFoundError:
        return None
    return None


def same(recorded: Fingerprint | None, current: Fingerprint | None) -> bool:
    """Both describe the same stored state (ignoring when each was taken)."""
    if recorded is None or current is None:
        return False
    return _identity(recorded) == _identity(current)


def trustworthy(recorded: Fingerprint | None) -> bool:
    """Outside the racy window: no write could have left this fingerprint unchanged."""
    if recorded is None:
        return False
    if recorded.get("scheme") != "local":
        return True
    newest, taken = recorded.get("newest_mtime_ns"), recorded.get("taken_at_ns")
    if not isinstance(newest, int) or not isinstance(taken, int):
        return False
    return taken - newest > racy_margin_ns(newest)


def unchanged(recorded: Fingerprint | None, path: UPath) -> bool:
    """The recorded fingerprint is trustworthy and `path` still has it: its recorded digest
    may be trusted without reading a byte."""
    return trustworthy(recorded) and same(recorded, take(path))


def racy_margin_ns(mtime_ns: int) -> int:
    """How close to "now" an mtime may be and still hide a later write (see module doc)."""
    return COARSE_MARGIN_NS if mtime_ns % 1_000_000_000 == 0 else FINE_MARGIN_NS


def settled(path: UPath) -> Fingerprint | None:
    """The fingerprint of something this process has just written and verified."""
    return settle(path, take(path))


def settle(path: UPath, first: Fingerprint | None) -> Fingerprint | None:
    """Make `first`, taken right after this process wrote `path`, trustworthy if possible.

    A fresh write is inside its racy window; on a fine-grained clock the window is short, so
    wait out what is left of it and take the fingerprint again, keeping it only if nothing
    changed since `first`. (Settling many files after all were written waits once, for the
    last.) The digest recorded with it is the one computed while writing, so what remains
    unseen is a foreign write within one timestamp tick of ours that keeps size, mtime and
    ctime; a deep verification catches even that. On a coarse clock `first` is kept as is:
    not trusted, so the next check verifies the content and records a trustworthy one.
    """
    if first is None or trustworthy(first) or first.get("scheme") != "local":
        return first
    wait_ns = first["newest_mtime_ns"] + racy_margin_ns(first["newest_mtime_ns"]) + 1
    wait_ns -= first["taken_at_ns"]
    if wait_ns > SETTLE_WAIT_LIMIT_NS:
        return first
    time.sleep(max(wait_ns, 0) / 1e9)
    second = take(path)
    return second if same(first, second) else None


def around(path: UPath, verify) -> tuple[bool, Fingerprint | None]:
    """Run a full `verify()` of `path` and return its verdict with the fingerprint to record:
    taken before and after, and kept only if both agree (a write during the verification
    means the digest may describe neither state)."""
    before = take(path)
    ok = verify()
    if not ok:
        return False, None
    after = take(path)
    return True, after if same(before, after) else None


def _identity(fingerprint: Fingerprint) -> dict[str, Any]:
    return {k: v for k, v in fingerprint.items() if k not in _WHEN}


def _local(path: str) -> Fingerprint:
    taken_at = time.time_ns()
    status = os.stat(path)
    if not os.path.isdir(path):
        return {
            "scheme": "local",
            "size": status.st_size,
            "mtime_ns": status.st_mtime_ns,
            "ctime_ns": status.st_ctime_ns,
            "inode": status.st_ino,
            "newest_mtime_ns": status.st_mtime_ns,
            "taken_at_ns": taken_at,
        }
    digest, count, total, newest = hashlib.sha256(), 0, 0, 0
    for relative, stat in sorted(_walk(path)):
        digest.update(
            f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ctime_ns}\0"
            f"{stat.st_ino}\n".encode()
        )
        count, total = count + 1, total + stat.st_size
        newest = max(newest, stat.st_mtime_ns)
    return {
        "scheme": "local",
        "files": count,
        "size": total,
        "listing_sha256": digest.hexdigest(),
        "newest_mtime_ns": newest,
        "taken_at_ns": taken_at,
    }


def _walk(top: str):
    """(path relative to `top`, stat) of every file below `top`; links are not followed."""
    stack = [top]
    while stack:
        directory = stack.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    yield os.path.relpath(entry.path, top), entry.stat(follow_symlinks=False)


def _version_of(info: dict[str, Any]) -> str | None:
    """What changes with every write of an object: GCS generation, else the ETag."""
    for key in ("generation", "ETag", "etag", "VersionId"):
        value = info.get(key)
        if value not in (None, ""):
            return f"{key}:{value}"
    return None


def _object(path: UPath) -> Fingerprint | None:
    fs, key = path.fs, path.path
    fs.invalidate_cache(key)  # a listing cached earlier in this process may be stale
    info = fs.info(key)
    if info.get("type") != "directory":
        version = _version_of(info)
        if version is None:
            return None
        return {"scheme": path.protocol, "size": int(info["size"]), "version": version}
    # One listing of the store's keys, with sizes and ETags: no chunk is read.
    listing = fs.find(key, detail=True)
    digest, total = hashlib.sha256(), 0
    for name in sorted(listing):
        entry = listing[name]
        version = _version_of(entry)
        if version is None:
            return None
        digest.update(f"{name}\0{entry['size']}\0{version}\n".encode())
        total += int(entry["size"])
    return {
        "scheme": path.protocol,
        "files": len(listing),
        "size": total,
        "listing_sha256": digest.hexdigest(),
    }
