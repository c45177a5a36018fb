"""An unchanged refresh of a file dataset opens none of its stored files: a file kept on its
unchanged fingerprint is described from what its manifest entry recorded of its header, its
blocking check inspects that record, and the thumbnail is the one shown for the same data
version. A changed fingerprint (or an entry that recorded no header) means the file is read.

Opens are observed with a Python audit hook (`open` events, raised by every `open()` and
`os.open()` in the process, the readers' included), not by replacing any reader.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from em_assets.integrity.checks import stored_data_intact
from em_assets.resources import default_resources
from em_assets.storage.root import StorageRoot

_watched: list[tuple[Path, list[str]]] = []


def _audit(event: str, args: tuple) -> None:
    if event != "open" or not _watched or not isinstance(args[0], str | bytes | os.PathLike):
        return
    opened = os.fsdecode(args[0])
    for directory, seen in _watched:
        if opened.startswith(str(directory) + os.sep):
            seen.append(opened)


sys.addaudithook(_audit)  # hooks cannot be removed; it only records while `opened_under` runs


@contextmanager
def opened_under(directory: Path) -> Iterator[list[str]]:
    """Every file under `directory` opened (by anything in this process) while inside."""
    seen: list[str] = []
    _watched.append((directory, seen))
    try:
        yield seen
    finally:
        _watched.remove((directory, seen))


def run(assets: list, instance: DagsterInstance):
    result = materialize(assets, resources=default_resources(), instance=instance)
    assert result.success
    return result


def evaluation(result, name: str):
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == name)


def kept_lines(result, instance: DagsterInstance) -> list[str]:
    return [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if "stored copy verified" in entry.user_message
    ]


def age(path: Path, seconds: float = 10.0) -> None:
    """Move a file's mtime into the past, as an edit made earlier would leave it."""
    then = time.time_ns() - int(seconds * 1e9)
    os.utime(path, ns=(then, then))


def epfl_assets() -> list:
    from em_assets.datasets.epfl_hippocampus import epfl_files_intact, epfl_hippocampus

    return [epfl_hippocampus, epfl_files_intact]


def test_unchanged_epfl_refresh_opens_no_stored_stack(epfl_replica, storage_root):
    instance = DagsterInstance.ephemeral()
    first = run(epfl_assets(), instance)
    manifest = json.loads((storage_root / "epfl_hippocampus.json").read_text())
    assert all(entry["header"]["pages"] == entry["shape"][0] for entry in manifest["files"])

    stacks = storage_root / "epfl_hippocampus"
    with opened_under(stacks) as opened:
        again = run(epfl_assets(), instance)
    assert [p for p in opened if p.endswith(".tif")] == []
    check = evaluation(again, "epfl_files_intact")
    assert check.passed and check.metadata["entries_trusted_by_fingerprint"].value == 2
    # One log line (one event) for the whole set, naming every file kept.
    paths = ", ".join(entry["path"] for entry in manifest["files"])
    assert kept_lines(again, instance) == [
        f"2 stored files: source unchanged and stored copy verified (fingerprint unchanged: "
        f"{paths}); nothing to transfer"
    ]
    shown = again.asset_materializations_for_node("epfl_hippocampus")[0].metadata
    earlier = first.asset_materializations_for_node("epfl_hippocampus")[0].metadata
    assert shown["unchanged"].value and shown["thumbnail"] == earlier["thumbnail"]


def test_a_changed_fingerprint_reads_the_stack_again(epfl_replica, storage_root):
    instance = DagsterInstance.ephemeral()
    run(epfl_assets(), instance)
    stack = storage_root / "epfl_hippocampus" / "training.tif"
    age(stack)  # same bytes, new mtime: the fingerprint no longer matches

    with opened_under(stack.parent) as opened:
        again = run(epfl_assets(), instance)
    assert str(stack) in opened  # re-hashed, header read again
    check = evaluation(again, "epfl_files_intact")
    assert check.passed
    [line] = kept_lines(again, instance)
    assert "fingerprint unchanged: epfl_hippocampus/training_groundtruth.tif;" in line
    assert "re-hashed: epfl_hippocampus/training.tif)" in line
    entry = next(
        e
        for e in json.loads((storage_root / "epfl_hippocampus.json").read_text())["files"]
        if e["path"] == "epfl_hippocampus/training.tif"
    )
    assert entry["header"]["pages"] == entry["shape"][0]


def test_an_entry_without_a_recorded_header_is_read_then_recorded(epfl_replica, storage_root):
    """Manifests written before headers were recorded: the header is read once more."""
    instance = DagsterInstance.ephemeral()
    run(epfl_assets(), instance)
    path = storage_root / "epfl_hippocampus.json"
    document = json.loads(path.read_text())
    for entry in document["files"]:
        entry.pop("header")
    path.write_text(json.dumps(document))

    with opened_under(storage_root / "epfl_hippocampus") as opened:
        run(epfl_assets(), instance)
    assert any(p.endswith("training.tif") for p in opened)
    assert all(e["header"] for e in json.loads(path.read_text())["files"])


def test_the_intact_check_judges_a_trusted_stack_by_its_recorded_header(epfl_replica, storage_root):
    """What the record says is checked, not skipped: a recorded page count that disagrees
    with the shape fails the check without the file being opened."""
    from em_assets.datasets.epfl_hippocampus import recorded_stack_problems, uint8_stack_problems

    run(epfl_assets(), DagsterInstance.ephemeral())
    storage = StorageRoot(root=str(storage_root))
    manifest = storage.stored_manifest("epfl_hippocampus")
    assert manifest is not None
    header = {**manifest.files[0].header, "pages": manifest.files[0].header["pages"] + 1}
    files = [manifest.files[0].model_copy(update={"header": header}), *manifest.files[1:]]
    altered = manifest.model_copy(update={"files": files})

    def check(manifest):
        return stored_data_intact(
            storage.base(), manifest, uint8_stack_problems, False, recorded_stack_problems
        )

    with opened_under(storage_root / "epfl_hippocampus") as opened:
        assert check(manifest).passed
        failed = check(altered)
    assert [p for p in opened if p.endswith(".tif")] == []
    assert not failed.passed and "pages, manifest says" in failed.metadata["problems"].value
    # deep inspects the file itself, whatever was recorded
    with opened_under(storage_root / "epfl_hippocampus") as opened:
        assert stored_data_intact(
            storage.base(), manifest, uint8_stack_problems, True, recorded_stack_problems
        ).passed
    assert any(p.endswith("training.tif") for p in opened)


@pytest.mark.parametrize("dataset", ["empiar_11759", "idr_0086"])
def test_unchanged_refresh_opens_no_stored_file(dataset, request, storage_root):
    """EMPIAR's DM3 slices and IDR's TIFFs: calibration and slice thickness come back from
    the recorded headers, so the WARN checks say what they said, with nothing opened."""
    request.getfixturevalue(f"{dataset.split('_')[0]}_replica")
    module = __import__(f"em_assets.datasets.{dataset}", fromlist=["SPEC"])
    assets = [module.SPEC.asset, module.SPEC.intact_check]
    instance = DagsterInstance.ephemeral()
    first = run(assets, instance)

    with opened_under(storage_root / dataset) as opened:
        again = run(assets, instance)
    assert [p for p in opened if p.endswith((".dm3", ".tif"))] == []
    before = {e.check_name: e.passed for e in first.get_asset_check_evaluations()}
    after = {e.check_name: e.passed for e in again.get_asset_check_evaluations()}
    assert after == before
    # the replicas' voxel sizes differ from the documented ones on purpose (a WARN)
    assert all(passed for n, passed in after.items() if not n.endswith("_voxel_size_documented"))
    assert f"{dataset.split('_')[0]}_voxel_size_documented" in after  # the asset's own
    from_headers = [n for n in before if "_matches_" in n]  # calibration, size, thickness
    assert from_headers
    for name in from_headers:
        assert evaluation(again, name).metadata == evaluation(first, name).metadata
