"""idr_0086 against replicas of EBI's file server and IDR's web client."""

from __future__ import annotations

import hashlib
import json

import pytest
from dagster import AssetCheckSeverity, DagsterInstance, materialize
from upath import UPath

from em_assets.datasets.idr_0086 import idr_0086, idr_files_intact
from em_assets.formats.tiff import read_tiff_calibration
from em_assets.resources import default_resources
from em_assets_tests.helpers import step_error
from em_assets_tests.replicas.ebi import (
    IDR_IMAGE_PATH,
    IDR_XY,
    IDR_XZ,
    XY_SHAPE,
    XZ_SHAPE,
    idr_files,
    image_data,
    serve_idr_files,
)

ASSETS = [idr_0086, idr_files_intact]  # the WARN checks are the asset's own


def run(raise_on_error: bool = True):
    return materialize(
        ASSETS,
        resources=default_resources(),
        instance=DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
    )


def test_files_shapes_and_voxel_size_from_idr(idr_replica, storage_root):
    _, served = idr_replica
    result = run()
    manifest = json.loads((storage_root / "idr_0086.json").read_text())
    assert manifest["voxel_size_nm"] == [21.0, 21.0, 19.0]  # IDR's pixel_size, µm -> nm
    assert "imgData" in manifest["voxel_size_source"]
    assert manifest["isotropic"] is False
    shapes = {f["path"].split("/")[-1]: f["shape"] for f in manifest["files"]}
    assert shapes == {IDR_XY: list(XY_SHAPE), IDR_XZ: list(XZ_SHAPE)}
    for entry in manifest["files"]:
        name = entry["path"].split("/")[-1]
        assert entry["sha256"] == hashlib.sha256(served[name]).hexdigest()
        assert (storage_root / entry["path"]).read_bytes() == served[name]
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evaluations["idr_files_intact"].passed
    assert evaluations["idr_size_matches_tiff"].passed
    calibration = evaluations["idr_pixel_size_matches_tiff"]
    assert calibration.passed, calibration.metadata["disagreements"].value
    stated = calibration.metadata["tiff_calibration"].value
    assert "spacing 0.019 um (ImageJ 1.52p, big-endian)" in stated[IDR_XY]
    assert "spacing 0.021 um" in stated[IDR_XZ]  # its pages run along y
    documented = evaluations["idr_voxel_size_documented"]
    assert not documented.passed and documented.severity == AssetCheckSeverity.WARN


def test_idr_size_disagreeing_with_the_tiff_is_flagged(idr_replica, storage_root):
    server, _ = idr_replica
    server.put(IDR_IMAGE_PATH, json.dumps(image_data((10, 31, 45))).encode(), "application/json")
    result = run()
    evaluation = {e.check_name: e for e in result.get_asset_check_evaluations()}[
        "idr_size_matches_tiff"
    ]
    assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.WARN
    assert evaluation.metadata["idr_size_zyx"].value == [10, 31, 45]


REAL_PIXEL_UM = {"x": 0.02, "y": 0.02, "z": 0.02}
"""What IDR and the real TIFFs say: 50 px/µm, spacing 0.02 µm."""


def test_real_imagej_calibration_agrees_with_idr(idr_replica, storage_root):
    server, _ = idr_replica
    document = json.dumps(image_data(pixel_size_um=REAL_PIXEL_UM)).encode()
    server.put(IDR_IMAGE_PATH, document, "application/json")
    serve_idr_files(server, idr_files(REAL_PIXEL_UM))
    result = run()
    manifest = json.loads((storage_root / "idr_0086.json").read_text())
    assert manifest["voxel_size_nm"] == [20.0, 20.0, 20.0]
    stored = storage_root / manifest["files"][0]["path"]
    assert stored.read_bytes()[:4] == b"MM\x00*"  # big-endian, as the real files are
    calibration = read_tiff_calibration(UPath(stored))
    assert (calibration.column_nm, calibration.row_nm, calibration.page_nm) == (20, 20, 20)
    assert calibration.stated_as.startswith("50 × 50 px/um, spacing 0.02 um")
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evaluations["idr_pixel_size_matches_tiff"].passed
    assert evaluations["idr_voxel_size_documented"].passed


def test_tiff_calibration_disagreeing_with_idr_is_flagged(idr_replica, storage_root):
    server, _ = idr_replica
    serve_idr_files(server, idr_files(REAL_PIXEL_UM))  # IDR still says 21 x 21 x 19 nm
    result = run()
    manifest = json.loads((storage_root / "idr_0086.json").read_text())
    assert manifest["voxel_size_nm"] == [21.0, 21.0, 19.0]  # IDR's value is kept
    evaluation = {e.check_name: e for e in result.get_asset_check_evaluations()}[
        "idr_pixel_size_matches_tiff"
    ]
    assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.WARN
    problems = evaluation.metadata["disagreements"].value
    assert f"{IDR_XY}: x is 20 nm in the file, 21 in IDR" in problems
    assert f"{IDR_XZ}: z is 20 nm in the file, 19 in IDR" in problems  # its page rows
    assert f"{IDR_XY}: z is 20 nm in the file, 19 in IDR" in problems  # ImageJ spacing
    assert f"{IDR_XZ}: y is 20 nm in the file, 21 in IDR" in problems  # ImageJ spacing


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        (b"<html><body>Server Error</body></html>", "expected JSON but got an HTML page"),
        (
            json.dumps({"pixel_size": {"x": 0.02, "y": 0.02, "z": None}}).encode(),
            "no pixel_size for axes ['z']",
        ),
        (
            json.dumps({"pixel_size": {"x": None, "y": None, "z": 0.02}}).encode(),
            "no pixel_size for axes ['x', 'y'] (pixel_size.x = None, pixel_size.y = None)",
        ),
    ],
)
def test_unusable_idr_metadata_fails_before_downloading(
    idr_replica, storage_root, document, complaint
):
    server, _ = idr_replica
    server.put(IDR_IMAGE_PATH, document, "application/json")
    result = run(raise_on_error=False)
    assert complaint in step_error(result)
    assert server.state.payload_by_path.keys() <= {IDR_IMAGE_PATH}
