"""empiar_11759 against replicas of EMPIAR's API and EBI's autoindexed data directory."""

from __future__ import annotations

import hashlib
import json

import pytest
from dagster import AssetCheckSeverity, DagsterInstance, materialize
from upath import UPath

from em_assets.datasets.empiar_11759 import (
    empiar_11759,
    empiar_files_intact,
    section_thickness_nm,
)
from em_assets.formats.autoindex import parse_listing
from em_assets.formats.dm3 import read_dm3_header
from em_assets.resources import default_resources
from em_assets_tests.helpers import step_error
from em_assets_tests.replicas.empiar import (
    API_ENTRY,
    DATA_DIRECTORY,
    SLICE_SHAPE,
    SLICES,
    autoindex,
    entry_json,
    serve_slices,
    slices,
)
from em_assets_tests.replicas.http_server import Fault

ASSETS = [empiar_11759, empiar_files_intact]  # the WARN checks are the asset's own


def run(raise_on_error: bool = True, **config):
    return materialize(
        ASSETS,
        resources=default_resources(),
        instance=DagsterInstance.ephemeral(),
        run_config={"ops": {"empiar_11759": {"config": config}}} if config else None,
        raise_on_error=raise_on_error,
    )


def evaluations(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_slices_metadata_and_voxel_size_from_the_entry(empiar_replica, storage_root):
    _, served = empiar_replica
    result = run()
    manifest = json.loads((storage_root / "empiar_11759.json").read_text())
    assert manifest["voxel_size_nm"] == [7.5, 7.5, 45.0]  # 75 Å, and '45 nm' in details
    assert "pixel_width" in manifest["voxel_size_source"]
    assert "section thickness 45 nm" in manifest["voxel_size_source"]
    assert manifest["technique"] == "SBF-SEM" and manifest["doi"] == "10.6019/EMPIAR-11759"
    assert manifest["title"] == "Developing retina in zebrafish 55 hpf larval eye"
    assert manifest["shape"] == [len(SLICES), *SLICE_SHAPE] and manifest["dtype"] == "uint8"
    assert [f["path"] for f in manifest["files"]] == [f"empiar_11759/{n}" for n in SLICES]
    for entry in manifest["files"]:
        name = entry["path"].split("/")[-1]
        assert entry["sha256"] == hashlib.sha256(served[name]).hexdigest()
        assert (storage_root / entry["path"]).read_bytes() == served[name]
    assert not (storage_root / "empiar_11759" / "F57-8_test1.xml").exists()
    checks = evaluations(result)
    assert checks["empiar_files_intact"].passed
    assert checks["empiar_listing_complete"].passed
    assert checks["empiar_calibration_matches_api"].passed
    assert checks["empiar_section_thickness_matches_dm3"].passed
    documented = checks["empiar_voxel_size_documented"]
    assert not documented.passed and documented.severity == AssetCheckSeverity.WARN


def test_short_listing_is_listed_again(empiar_replica, storage_root):
    server, _ = empiar_replica
    short = autoindex([*SLICES[:-1], "F57-8_test1.xml", "trakem2/"]).encode()
    server.inject(Fault("body", body=short, content_type="text/html"), DATA_DIRECTORY)
    result = run()
    assert len(server.requests_for(DATA_DIRECTORY)) == 2
    manifest = json.loads((storage_root / "empiar_11759.json").read_text())
    assert manifest["file_count"] == len(SLICES)
    assert evaluations(result)["empiar_listing_complete"].passed


def test_listing_still_short_is_flagged_not_fatal(empiar_replica, storage_root):
    server, _ = empiar_replica
    server.put(
        API_ENTRY, json.dumps(entry_json(count=len(SLICES) + 1)).encode(), "application/json"
    )
    result = run()
    assert len(server.requests_for(DATA_DIRECTORY)) == 3
    check = evaluations(result)["empiar_listing_complete"]
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    assert check.metadata["api_count"].value == len(SLICES) + 1


def test_escaping_listing_entries_are_refused_and_reported(empiar_replica, storage_root):
    server, _ = empiar_replica
    hostile = [*SLICES, "../../x.dm3", "http://elsewhere/x.dm3", "/etc/y.dm3", "z.dm3?sig=1"]
    server.put(DATA_DIRECTORY, autoindex(hostile).encode(), "text/html")
    result = run()
    metadata = result.asset_materializations_for_node("empiar_11759")[0].metadata
    assert sorted(metadata["refused_listing_entries"].value) == sorted(hostile[len(SLICES) :])
    written = sorted(p.name for p in storage_root.rglob("*.dm3"))
    assert written == SLICES
    assert not (storage_root.parent / "x.dm3").exists()
    assert all("elsewhere" not in path for _, path, _ in server.state.requests)


def test_max_files_takes_the_first_slices(empiar_replica, storage_root):
    run(max_files=2)
    manifest = json.loads((storage_root / "empiar_11759.json").read_text())
    assert [f["path"] for f in manifest["files"]] == [f"empiar_11759/{n}" for n in SLICES[:2]]
    assert manifest["shape"][0] == 2


def test_dm3_calibration_disagreeing_with_the_api_is_flagged(empiar_replica, storage_root):
    server, _ = empiar_replica
    server.put(API_ENTRY, json.dumps(entry_json(pixel_angstrom=80.0)).encode(), "application/json")
    result = run()
    manifest = json.loads((storage_root / "empiar_11759.json").read_text())
    assert manifest["voxel_size_nm"][:2] == [8.0, 8.0]  # the API's value is kept
    check = evaluations(result)["empiar_calibration_matches_api"]
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    assert "DM3 says 7.5 × 7.5 nm" in check.metadata["disagreements"].value


REAL_PIXEL_UM = 0.007998250424861908
"""The real slices' calibration (µm per pixel, as a tag dump of slice 0002 shows it)."""


def test_real_micrometre_calibration_gives_nanometres(empiar_replica, storage_root):
    """Slices calibrated like the real ones (µm, U+00B5, float32) against an API that gives
    the same pixel in Å: the DM3 and the API agree once both are in nm."""
    server, _ = empiar_replica
    pixel_angstrom = REAL_PIXEL_UM * 10_000
    server.put(
        API_ENTRY,
        json.dumps(entry_json(pixel_angstrom=pixel_angstrom)).encode(),
        "application/json",
    )
    serve_slices(server, slices(pixel_um=REAL_PIXEL_UM))
    result = run()
    manifest = json.loads((storage_root / "empiar_11759.json").read_text())
    assert manifest["voxel_size_nm"][:2] == pytest.approx([7.99825] * 2, rel=1e-6)
    header = read_dm3_header(UPath(storage_root / manifest["files"][0]["path"]))
    assert header.unit == "\u00b5m" and header.pixel_size == (0.00799825, 0.00799825)
    assert header.slice_thickness_nm == 45.0
    checks = evaluations(result)
    assert checks["empiar_calibration_matches_api"].passed
    assert checks["empiar_calibration_matches_api"].metadata["disagreements"].value == "none"


def test_dm3_slice_thickness_disagreeing_with_the_api_is_flagged(empiar_replica, storage_root):
    server, _ = empiar_replica
    serve_slices(server, slices(thickness_nm=50.0))  # the API's details say 45 nm
    result = run()
    manifest = json.loads((storage_root / "empiar_11759.json").read_text())
    assert manifest["voxel_size_nm"][2] == 45.0  # the API's value is kept
    check = evaluations(result)["empiar_section_thickness_matches_dm3"]
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    assert "SBFSEM.Record.Slice thickness says 50 nm" in check.metadata["disagreements"].value
    assert check.metadata["dm3_slice_thickness_nm"].value == [50.0]


def test_null_pixel_width_is_an_error_naming_the_field(empiar_replica, storage_root):
    server, _ = empiar_replica
    server.put(API_ENTRY, json.dumps(entry_json(pixel_angstrom=None)).encode(), "application/json")
    result = run(raise_on_error=False)
    message = step_error(result)
    assert "imagesets[0].pixel_width is null, not a pixel size" in message
    assert "EMPIAR-11759" in message and "TypeError" not in message
    downloads = [p for m, p, _ in server.state.requests if m == "GET" and p.endswith(".dm3")]
    assert not downloads  # refused before any slice moves
    assert not (storage_root / "empiar_11759.json").exists()


def test_error_page_instead_of_dm3_fails_cleanly(empiar_replica, storage_root):
    server, _ = empiar_replica
    server.inject(Fault("body", body=b"<html>busy</html>", content_type="application/octet-stream"),
                  DATA_DIRECTORY + SLICES[1])  # fmt: skip
    result = run(raise_on_error=False)
    assert "not DM3" in step_error(result)
    assert not (storage_root / "empiar_11759" / SLICES[1]).exists()


def test_non_positive_max_files_is_a_config_error(empiar_replica, storage_root):
    with pytest.raises(Exception, match="max_files"):
        run(max_files=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("section thickness 50 nm.", 50.0),
        ("Cut at 70 nm sections with a diamond knife", 70.0),
        ("z-step of 25.5 nm between slices", 25.5),
        ("pixel size 8 nm, no thickness stated", None),
    ],
)
def test_section_thickness_is_parsed_from_free_text(text, expected):
    found = section_thickness_nm(text)
    assert (found[0] if found else None) == expected


def test_listing_parser_keeps_plain_dm3_names_only():
    html = autoindex(["a.dm3", "b.DM3", "notes.xml", "trakem2/", "..%2Fc.dm3", "d%20e.dm3"])
    listing = parse_listing(html, ".dm3")
    assert listing.files == ["a.dm3", "b.DM3", "d e.dm3"]
    assert listing.refused == ["..%2Fc.dm3"]
