"""Fingerprints: an unchanged stored copy is trusted without a byte read; anything else is
verified in full; deep verification re-reads regardless.

"No content read" is measured, not inferred: `rchar` in /proc/self/io counts every byte
this process passes through read(), so a check that hashed the file would add its size.
Each such test also runs the deep path as a positive control of the measurement.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import zarr
from dagster import DagsterInstance, materialize
from upath import UPath

from em_assets.crops.copy import stored_digest
from em_assets.definitions import build_definitions
from em_assets.integrity.verify import verify_files
from em_assets.manifest.model import FileEntry, Manifest, build_manifest
from em_assets.resources import default_resources
from em_assets.storage import fingerprint
from em_assets.storage.root import StorageRoot
from em_assets.transfer.client import RemoteVersion
from em_assets.transfer.engine import StoredFile, check_stored_copy

SIZE = 16 * 1024 * 1024
MiB = 1024 * 1024


def bytes_read() -> int:
    """Bytes this process has read through read()/pread() so far (all threads)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def reading(action):
    """(result of `action()`, bytes read while it ran)."""
    before = bytes_read()
    result = action()
    return result, bytes_read() - before


def write_aged(path: Path, data: bytes, age_s: float = 10.0) -> None:
    """Write `data` with an mtime well outside the racy window, as a file stored earlier."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    then = time.time_ns() - int(age_s * 1e9)
    os.utime(path, ns=(then, then))


def manifest_of(root: Path, entries: list[FileEntry]) -> Manifest:
    return build_manifest(
        dataset="test",
        title="t",
        technique="FIB-SEM",
        organism="o",
        sample="s",
        voxel_size_nm=[5, 5, 5],
        voxel_size_source="test",
        axes=["z", "y", "x"],
        shape=[1, 1, 1],
        dtype="uint8",
        files=entries,
        source_urls=[],
        license="l",
        citation="c",
        retrieved_at=datetime.now(UTC),
        source_version="v",
    )


@pytest.fixture
def stored(tmp_path) -> tuple[Path, bytes, FileEntry]:
    """A stored 16 MiB file, verified long enough ago to have a trustworthy fingerprint."""
    root = tmp_path / "root"
    data = np.random.default_rng(0).integers(0, 256, SIZE, dtype=np.uint8).tobytes()
    write_aged(root / "set" / "a.tif", data)
    entry = FileEntry(
        path="set/a.tif",
        bytes=SIZE,
        sha256=hashlib.sha256(data).hexdigest(),
        fingerprint=fingerprint.take(UPath(root / "set" / "a.tif")),
    )
    return root, data, entry


def test_unchanged_file_is_trusted_without_reading_it(stored):
    root, _, entry = stored
    manifest = manifest_of(root, [entry])
    result, read = reading(lambda: verify_files(UPath(root), manifest))
    assert result.problems == [] and result.trusted == 1 and result.read == 0
    assert read < MiB  # a stat, not 16 MiB
    deep, read_deep = reading(lambda: verify_files(UPath(root), manifest, deep=True))
    assert deep.problems == [] and deep.read == 1
    assert read_deep >= SIZE  # the measurement sees a full read when there is one


def test_engine_keeps_an_unchanged_copy_without_reading_it(stored):
    root, _, entry = stored
    previous = StoredFile(entry.bytes, entry.sha256, RemoteVersion(), entry.fingerprint)
    path = UPath(root / entry.path)
    check, read = reading(lambda: check_stored_copy(path, previous))
    assert check.matches and not check.read_content and read < MiB
    check, read = reading(lambda: check_stored_copy(path, previous, deep=True))
    assert check.matches and check.read_content and read >= SIZE


def test_change_in_place_is_verified_in_full_and_found(stored):
    root, data, entry = stored
    changed = bytearray(data)
    changed[SIZE // 2] ^= 0x01
    (root / entry.path).write_bytes(bytes(changed))  # same size, mtime moves
    result = verify_files(UPath(root), manifest_of(root, [entry]))
    assert result.read == 1 and result.problems == ["set/a.tif: sha256 differs from the manifest"]
    assert result.entries[0].fingerprint is None  # nothing trustworthy to record


def test_change_in_place_with_mtime_put_back_is_found(stored):
    """Restoring mtime (as `touch -r` or a careless tool would) still moves ctime."""
    root, data, entry = stored
    path = root / entry.path
    before = path.stat()
    changed = bytearray(data)
    changed[7] ^= 0x01
    path.write_bytes(bytes(changed))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_mtime_ns == entry.fingerprint["mtime_ns"]
    result = verify_files(UPath(root), manifest_of(root, [entry]))
    assert result.read == 1 and result.problems


def test_deleted_file_is_missing(stored):
    root, _, entry = stored
    (root / entry.path).unlink()
    result = verify_files(UPath(root), manifest_of(root, [entry]))
    assert result.problems == ["set/a.tif: missing"] and result.trusted == 0


def test_replaced_file_is_verified_in_full_then_trusted_again(stored):
    """Same bytes, same mtime, but a new inode (a copy renamed over it): read once, and the
    new fingerprint recorded, so the next check is a stat again."""
    root, data, entry = stored
    path = root / entry.path
    write_aged(path.with_name("new"), data)
    os.utime(path.with_name("new"), ns=(entry.fingerprint["mtime_ns"],) * 2)
    os.replace(path.with_name("new"), path)
    result, read = reading(lambda: verify_files(UPath(root), manifest_of(root, [entry])))
    assert result.problems == [] and result.read == 1 and read >= SIZE
    renewed = result.entries[0].fingerprint
    assert renewed["inode"] != entry.fingerprint["inode"]
    again, read = reading(lambda: verify_files(UPath(root), manifest_of(root, result.entries)))
    assert again.trusted == 1 and read < MiB


def test_replaced_file_with_other_bytes_is_found(stored):
    root, data, entry = stored
    path = root / entry.path
    write_aged(path.with_name("new"), data[::-1])
    os.utime(path.with_name("new"), ns=(entry.fingerprint["mtime_ns"],) * 2)
    os.replace(path.with_name("new"), path)
    result = verify_files(UPath(root), manifest_of(root, [entry]))
    assert result.problems == ["set/a.tif: sha256 differs from the manifest"]


def test_racy_fingerprint_is_not_trusted(tmp_path):
    """A fingerprint taken in the same timestamp tick as the write could miss a second write
    in that tick. Such a write is simulated by giving the recorded fingerprint the changed
    file's identity: only the racy rule stands between it and a wrong 'unchanged'."""
    root = tmp_path / "root"
    path = root / "set" / "a.tif"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"A" * MiB)
    entry = FileEntry(path="set/a.tif", bytes=MiB, sha256=hashlib.sha256(b"A" * MiB).hexdigest())
    path.write_bytes(b"B" * MiB)  # the second write, in the "same tick"
    racy = fingerprint.take(UPath(path))
    racy["taken_at_ns"] = racy["mtime_ns"] + 1_000_000  # taken 1 ms after the write
    assert not fingerprint.trustworthy(racy)
    result = verify_files(
        UPath(root), manifest_of(root, [entry.model_copy(update={"fingerprint": racy})])
    )
    assert result.read == 1 and result.problems == ["set/a.tif: sha256 differs from the manifest"]
    # The same fingerprint, taken well after the write, is trusted (so the rule is what mattered).
    aged = {**racy, "taken_at_ns": racy["mtime_ns"] + 5_000_000_000}
    assert fingerprint.trustworthy(aged)


def test_whole_second_timestamps_get_a_two_second_window():
    second = 1_700_000_000 * 1_000_000_000
    fine = second + 123_456_789
    local = {"scheme": "local", "size": 1, "mtime_ns": second, "newest_mtime_ns": second}
    assert not fingerprint.trustworthy({**local, "taken_at_ns": second + 1_500_000_000})
    assert fingerprint.trustworthy({**local, "taken_at_ns": second + 2_500_000_000})
    finer = {**local, "mtime_ns": fine, "newest_mtime_ns": fine}
    assert fingerprint.trustworthy({**finer, "taken_at_ns": fine + 100_000_000})
    assert not fingerprint.trustworthy({**finer, "taken_at_ns": fine + 10_000_000})


def test_a_fresh_write_settles_into_a_trustworthy_fingerprint(tmp_path):
    path = tmp_path / "fresh.bin"
    path.write_bytes(b"x" * 1000)
    assert not fingerprint.trustworthy(fingerprint.take(UPath(path)))
    started = time.monotonic()
    settled = fingerprint.settled(UPath(path))
    assert fingerprint.trustworthy(settled) and fingerprint.same(
        settled, fingerprint.take(UPath(path))
    )
    assert time.monotonic() - started < 1


def test_a_write_during_verification_leaves_no_fingerprint_to_trust(stored):
    """The digest was checked against bytes that may be neither the old nor the new state."""
    root, data, _ = stored
    path = UPath(root / "set" / "a.tif")

    def verify_while_written() -> bool:
        path.write_bytes(data)  # same bytes, but written while being verified
        return True

    passed, taken = fingerprint.around(path, verify_while_written)
    assert passed and taken is None


def crop_store(root: Path) -> tuple[FileEntry, Path]:
    """A small stored crop array with its voxel digest and a trustworthy fingerprint."""
    array_dir = root / "crops" / "crop.ome.zarr" / "s0"
    data = np.random.default_rng(1).integers(0, 255, (64, 64, 64), dtype=np.uint8)
    group = zarr.open_group(str(array_dir.parent), mode="w", zarr_format=2)
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": [{"name": a, "type": "space", "unit": "nanometer"} for a in "zyx"],
            "datasets": [
                {"path": "s0", "coordinateTransformations": [{"type": "scale", "scale": [8, 8, 8]}]}
            ],
        }
    ]
    array = group.create_array(
        "s0",
        shape=data.shape,
        chunks=(32, 32, 32),
        dtype="uint8",
        chunk_key_encoding={"name": "v2", "separator": "/"},
    )
    array[:] = data
    then = time.time_ns() - 10_000_000_000
    for path in array_dir.rglob("*"):
        os.utime(path, ns=(then, then))
    entry = FileEntry(
        path="crops/crop.ome.zarr/s0",
        kind="zarr_array",
        bytes=sum(p.stat().st_size for p in array_dir.rglob("*") if p.is_file()),
        sha256=stored_digest(array, (32, 32, 32)),
        shape=[64, 64, 64],
        dtype="uint8",
        fingerprint=fingerprint.take(UPath(array_dir)),
    )
    return entry, array_dir


def test_unchanged_crop_is_trusted_from_its_listing_and_a_changed_chunk_is_found(tmp_path):
    root = tmp_path / "root"
    entry, array_dir = crop_store(root)
    manifest = manifest_of(root, [entry])
    result = verify_files(UPath(root), manifest)
    assert result.problems == [] and result.trusted == 1 and result.read == 0
    chunk = next(p for p in array_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
    chunk.write_bytes(chunk.read_bytes())  # rewritten with the same bytes: read again, passes
    again = verify_files(UPath(root), manifest)
    assert again.problems == [] and again.read == 1
    data = zarr.open_array(str(array_dir), mode="r+")
    data[0, 0, 0] = int(data[0, 0, 0]) ^ 0xFF
    found = verify_files(UPath(root), manifest_of(root, again.entries))
    assert found.problems == [
        "crops/crop.ome.zarr/s0: voxel content differs from the manifest's digest"
    ]


def test_object_store_fingerprint_follows_the_etag(s3_replica):
    s3_replica.client().create_bucket(Bucket="em-fingerprints")
    path = UPath("s3://em-fingerprints/set/a.bin")
    path.write_bytes(b"a" * 1000)
    first = fingerprint.take(path)
    assert first["version"].startswith("ETag:") and first["size"] == 1000
    assert fingerprint.unchanged(first, path)  # no racy window on object stores
    path.write_bytes(b"b" * 1000)
    assert not fingerprint.unchanged(first, path)
    store = UPath("s3://em-fingerprints/set/crop")
    for name in ("0/0", "0/1", ".zarray"):
        (store / name).write_bytes(name.encode())
    listing = fingerprint.take(store)
    assert listing["files"] == 3 and fingerprint.unchanged(listing, store)
    (store / "0/1").write_bytes(b"changed")
    assert not fingerprint.unchanged(listing, store)


def rot(path: Path, offset: int) -> None:
    """Flip a byte as rot below the filesystem would: content changes, metadata does not.

    Locally that cannot be staged from user space (a write moves ctime, and ctime cannot be
    set back), so the byte is flipped, mtime restored, and the recorded fingerprint brought
    up to the file's new ctime: exactly the state a silently rotted sector leaves."""
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def rot_recorded_stack(storage_root: Path) -> None:
    """Rot a byte of the stored EPFL training stack, leaving a fingerprint that matches."""
    manifest_path = storage_root / "epfl_hippocampus.json"
    document = json.loads(manifest_path.read_text())
    # Freshly downloaded files were settled out of their racy window before being recorded.
    assert all(fingerprint.trustworthy(entry["fingerprint"]) for entry in document["files"])
    stack = storage_root / "epfl_hippocampus" / "training.tif"
    rot(stack, stack.stat().st_size // 2)
    for entry in document["files"]:
        if entry["path"] == "epfl_hippocampus/training.tif":
            recorded = entry["fingerprint"]
            current = fingerprint.take(UPath(stack))
            assert {k: v for k, v in current.items() if k not in ("ctime_ns", "taken_at_ns")} == {
                k: v for k, v in recorded.items() if k not in ("ctime_ns", "taken_at_ns")
            }  # size, mtime, inode: as recorded
            entry["fingerprint"] = {**current, "taken_at_ns": recorded["taken_at_ns"]}
    manifest_path.write_text(json.dumps(document))


def test_deep_verify_job_catches_rot_that_the_fingerprint_cannot_see(epfl_replica, storage_root):
    from em_assets.datasets.epfl_hippocampus import epfl_files_intact, epfl_hippocampus

    result = materialize(
        [epfl_hippocampus, epfl_files_intact],
        resources=default_resources(),
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    rot_recorded_stack(storage_root)

    # By fingerprint the rot is invisible (nothing is read): the documented trade-off ...
    quick = verify_files(
        UPath(storage_root), StorageRoot(root=str(storage_root)).stored_manifest("epfl_hippocampus")
    )
    assert quick.problems == [] and quick.read == 0
    # ... and the monthly deep verification is what catches it, as a failed asset check.
    wired = build_definitions()  # resources read now, with EM_* at this test's root and replica
    job = wired.resolve_job_def("deep_verify")
    deep = job.execute_in_process(instance=DagsterInstance.ephemeral(), raise_on_error=False)
    evaluations = {e.check_name: e for e in deep.get_asset_check_evaluations()}
    epfl = evaluations["epfl_files_intact"]
    assert not epfl.passed
    assert "epfl_hippocampus/training.tif: sha256 differs" in epfl.metadata["problems"].value
    assert epfl.metadata["verification"].value == "deep"
    images = evaluations["epfl_hippocampus_images_intact"]  # its images, every chunk decoded
    assert images.passed and images.metadata["verification"].value == "deep"
    assert images.metadata["voxels_decoded"].value > 0


def test_verify_deep_run_config_fetches_a_rotted_file_again(epfl_replica, storage_root):
    from em_assets.datasets.epfl_hippocampus import epfl_files_intact, epfl_hippocampus

    server = epfl_replica[0]

    def run(config: dict | None = None):
        return materialize(
            [epfl_hippocampus, epfl_files_intact],
            resources=default_resources(),
            instance=DagsterInstance.ephemeral(),
            run_config={"ops": {"epfl_hippocampus": {"config": config}}} if config else None,
        )

    assert run().success
    rot_recorded_stack(storage_root)
    server.reset_counters()
    assert run().success  # by fingerprint: trusted, nothing fetched
    assert sum(server.state.payload_by_path.values()) == 0
    deep = run({"verify": "deep"})
    assert deep.success
    fetched = {path for path, count in server.state.payload_by_path.items() if count}
    assert [path.rsplit("/", 1)[-1] for path in fetched] == ["training.tif"]
    stored = StorageRoot(root=str(storage_root)).stored_manifest("epfl_hippocampus")
    assert "verify" not in stored.run_config  # a refresh does not repeat the deep mode
    assert verify_files(UPath(storage_root), stored, deep=True).problems == []
