"""consolidated_report over the five datasets from their replicas: outputs, CLI, missing inputs."""

from __future__ import annotations

import csv
import io
import json
import os

from dagster import AssetSelection, DagsterInstance, materialize
from PIL import Image
from upath import UPath

from em_assets.definitions import ASSETS, CHECKS, defs
from em_assets.manifest.model import Manifest
from em_assets.report.findings import Report
from em_assets.resources import default_resources
from em_assets_tests.conftest import SMALL_CROPS
from em_assets_tests.helpers import (
    in_a_fresh_process,
    materialization_metadata,
    run_cli,
    step_error,
)

DATASETS = ["empiar_11759", "epfl_hippocampus", "flyem_hemibrain", "idr_0086", "openorganelle_jrc"]


def materialize_all(selection=None, raise_on_error=True):
    return materialize(
        [*ASSETS, *CHECKS],
        resources=default_resources(),
        instance=DagsterInstance.ephemeral(),
        run_config=SMALL_CROPS if selection is None else None,
        selection=selection,
        raise_on_error=raise_on_error,
    )


def check_outputs(root: UPath) -> Report:
    report = Report.model_validate_json((root / "consolidated_report.json").read_text())
    assert report.summary.datasets == DATASETS and report.summary.dataset_count == 5
    manifests = {
        name: Manifest.model_validate_json((root / f"{name}.json").read_text()) for name in DATASETS
    }
    for name, manifest in manifests.items():
        row = report.datasets[name]
        assert row.voxel_size_nm == manifest.voxel_size_nm
        assert row.file_count == manifest.file_count and row.total_bytes == manifest.total_bytes
        assert row.technique == manifest.technique and row.organism == manifest.organism
    assert report.findings.total_bytes == sum(m.total_bytes for m in manifests.values())
    rows = list(csv.DictReader(io.StringIO((root / "consolidated_report.csv").read_text())))
    assert [r["dataset"] for r in rows] == DATASETS
    text = (root / "consolidated_report.md").read_text()
    assert "| dataset | technique |" in text
    assert all(f"| {name} |" in text for name in DATASETS)
    chart = Image.open(io.BytesIO((root / "consolidated_report_voxel_sizes.png").read_bytes()))
    chart.verify()
    assert chart.format == "PNG"
    return report


def test_report_on_a_local_root_agrees_with_the_manifests(all_sources):
    result = materialize_all()
    report = check_outputs(UPath(all_sources["root"]))
    # Replica values, read from the sources: nothing here is the documented constant.
    assert report.datasets["flyem_hemibrain"].voxel_size_nm == [9.0, 9.0, 10.0]
    assert report.datasets["empiar_11759"].anisotropy == 6.0  # 45 / 7.5
    assert report.findings.techniques["FIB-SEM"].count == 4
    assert report.findings.techniques["SBF-SEM"].count == 1
    assert report.findings.organisms == [
        "Danio rerio", "Drosophila melanogaster", "Homo sapiens", "Mus musculus",
    ]  # fmt: skip
    metadata = result.asset_materializations_for_node("consolidated_report")[0].metadata
    assert [r.data["dataset"] for r in metadata["comparison"].value.records] == DATASETS
    assert metadata["dataset_count"].value == 5
    assert "data:image/png;base64," in metadata["voxel_size_chart"].value
    assert "Finest voxels" in metadata["findings"].value


def test_report_draws_its_chart_again_only_when_the_voxel_sizes_change(all_sources):
    """The chart shows names and voxel sizes only; a report over the same ones keeps the
    drawn file (same inode: not even rewritten), one over a changed voxel size redraws it."""
    materialize_all()
    root = UPath(all_sources["root"])
    chart = root / "consolidated_report_voxel_sizes.png"
    drawn = os.stat(chart.path)
    materialize_all(selection=["consolidated_report"])
    assert os.stat(chart.path).st_ino == drawn.st_ino
    epfl = Manifest.model_validate_json((root / "epfl_hippocampus.json").read_text())
    epfl.voxel_size_nm = [4.0, 4.0, 4.0]
    (root / "epfl_hippocampus.json").write_text(epfl.model_dump_json())
    result = materialize_all(selection=["consolidated_report"])
    assert os.stat(chart.path).st_ino != drawn.st_ino
    assert chart.read_bytes() != b"" and check_outputs(root).datasets[
        "epfl_hippocampus"
    ].voxel_size_nm == [4.0, 4.0, 4.0]
    metadata = result.asset_materializations_for_node("consolidated_report")[0].metadata
    assert "data:image/png;base64," in metadata["voxel_size_chart"].value


def test_report_on_a_memory_root(all_sources, monkeypatch):
    monkeypatch.setenv("EM_ASSETS_ROOT", "memory://report-test/root")
    materialize_all()
    root = UPath("memory://report-test/root")
    check_outputs(root)
    root.fs.rm(root.path, recursive=True)


def test_report_alone_needs_every_dataset_and_says_how_to_build_them(all_sources):
    materialize_all(selection=["epfl_hippocampus", "idr_0086"])
    result = materialize_all(selection=["consolidated_report"], raise_on_error=False)
    message = step_error(result)
    assert (
        "empiar_11759, flyem_hemibrain, openorganelle_jrc have never been materialized" in message
    )
    assert "dagster asset materialize -m em_assets --select '*consolidated_report'" in message
    assert not (all_sources["root"] / "consolidated_report.json").exists()


def test_report_names_every_unreadable_manifest_and_how_to_rebuild_it(all_sources):
    materialize_all(selection=["epfl_hippocampus", "idr_0086"])
    root = all_sources["root"]
    text = (root / "idr_0086.json").read_text()
    (root / "idr_0086.json").write_text(text[: len(text) // 3])
    (root / "epfl_hippocampus.json").write_text("{}")
    message = step_error(materialize_all(selection=["consolidated_report"], raise_on_error=False))
    assert "cannot read 2 stored manifest(s)" in message
    assert f"idr_0086: manifest {root / 'idr_0086.json'} is not valid JSON" in message
    assert (
        f"epfl_hippocampus: manifest {root / 'epfl_hippocampus.json'} is not a manifest" in message
    )
    assert "--select 'epfl_hippocampus,idr_0086'" in message
    assert not (root / "consolidated_report.json").exists()


FOUR = ("flyem_hemibrain", "empiar_11759", "idr_0086", "openorganelle_jrc")


def test_cli_builds_everything_then_the_report_alone_moves_no_bytes(all_sources, tmp_path):
    """The README's commands in its order: the four-datasets command (with test-sized
    crops), the whole graph, then the report alone. One test rather than two so the four are
    built once (a whole graph from an empty root is built by the S3, UI and distributed tests);
    the whole-graph command still builds EPFL and the report, and re-runs the four."""
    http, precomputed = all_sources["http"], all_sources["precomputed"]
    four = run_cli(
        ["dagster", "asset", "materialize", "-m", "em_assets.definitions", "--select",
         ",".join(FOUR), "--config-json", json.dumps(SMALL_CROPS)],
        tmp_path,
    )  # fmt: skip
    assert four.returncode == 0, four.stderr[-3000:]
    for name in FOUR:
        manifest = Manifest.model_validate_json((all_sources["root"] / f"{name}.json").read_text())
        assert manifest.file_count >= 1 and manifest.total_bytes > 0
    assert not (all_sources["root"] / "epfl_hippocampus.json").exists()  # only what was asked

    everything = run_cli(
        ["dagster", "asset", "materialize", "-m", "em_assets", "--select", "*consolidated_report",
         "--config-json", json.dumps(SMALL_CROPS)],
        tmp_path,
    )  # fmt: skip
    assert everything.returncode == 0, everything.stderr[-3000:]
    check_outputs(UPath(all_sources["root"]))
    http.reset_counters()
    precomputed.reset_counters()
    alone = run_cli(
        ["dagster", "asset", "materialize", "-m", "em_assets", "--select", "consolidated_report"],
        tmp_path,
    )
    assert alone.returncode == 0, alone.stderr[-3000:]
    assert http.state.requests == [] and precomputed.state.requests == []
    assert f"Comparison of the {len(DATASETS)} datasets" in alone.stderr
    metadata = materialization_metadata(tmp_path, "consolidated_report")
    assert metadata["dataset_count"].value == 5


def test_definitions_hold_six_assets():
    keys = AssetSelection.all().resolve(defs.resolve_asset_graph())
    assert sorted(k.to_user_string() for k in keys) == sorted([*DATASETS, "consolidated_report"])


REPORT_IN_A_FRESH_PROCESS = """
import json, sys
from dagster import DagsterInstance, materialize
from em_assets.definitions import ASSETS, CHECKS
from em_assets.resources import default_resources
result = materialize([*ASSETS, *CHECKS], resources=default_resources(),
                     instance=DagsterInstance.ephemeral(), selection=["consolidated_report"])
print(json.dumps({"success": result.success, "pandas": "pandas" in sys.modules}))
"""


def report_in_a_fresh_process() -> dict:
    """The report alone, in a process that has imported nothing yet (pytest's has pandas)."""
    return in_a_fresh_process(REPORT_IN_A_FRESH_PROCESS)


def test_unchanged_report_is_kept_whole_and_a_changed_input_or_file_renders_it_again(
    all_sources,
):
    """Over the same manifests the report keeps its last value and files: pandas is not
    imported, nothing is rewritten (same inodes), the value is the same one (same
    generated_at). A changed input, or an edited or deleted report file, renders it again."""
    materialize_all()
    root = UPath(all_sources["root"])
    files = [
        root / f"consolidated_report{suffix}" for suffix in (".md", ".csv", "_voxel_sizes.png")
    ]
    inodes = [os.stat(f.path).st_ino for f in files]
    first = Report.model_validate_json((root / "consolidated_report.json").read_text())
    assert sorted(first.outputs) == sorted(f.name for f in files)

    assert report_in_a_fresh_process()["pandas"] is False
    assert [os.stat(f.path).st_ino for f in files] == inodes
    kept = check_outputs(root)
    assert kept == first

    (root / "consolidated_report.md").write_text("edited by hand\n")
    assert report_in_a_fresh_process()["pandas"] is True
    assert "| dataset | technique |" in (root / "consolidated_report.md").read_text()
    (root / "consolidated_report.csv").unlink()
    report_in_a_fresh_process()
    assert check_outputs(root).generated_at > first.generated_at

    epfl = Manifest.model_validate_json((root / "epfl_hippocampus.json").read_text())
    epfl.organism = "Rattus norvegicus"
    (root / "epfl_hippocampus.json").write_text(epfl.model_dump_json())
    assert report_in_a_fresh_process()["pandas"] is True
    assert check_outputs(root).datasets["epfl_hippocampus"].organism == "Rattus norvegicus"
    assert "Rattus norvegicus" in (root / "consolidated_report.md").read_text()
