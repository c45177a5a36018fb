"""Report findings on crafted manifests: each case asserts the exact outcome."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from em_assets.manifest.model import FileEntry, LabelInfo, Manifest, build_manifest
from em_assets.report.findings import build_report
from em_assets.report.render import comparison_table, key_findings, markdown
from em_assets.report.techniques import technique_group


def manifest(name, voxel, technique="FIB-SEM", organism="Mus musculus", sizes=(1000,)) -> Manifest:
    files = [
        FileEntry(path=f"{name}/f{i}", bytes=size, sha256="0" * 64) for i, size in enumerate(sizes)
    ]
    return build_manifest(
        dataset=name, title=name, technique=technique, organism=organism, sample="s",
        voxel_size_nm=voxel, voxel_size_source=f"{name} metadata", axes=["z", "y", "x"],
        shape=[1, 1, 1], dtype="uint8", files=files, source_urls=["http://x.invalid"],
        license="CC0", citation="c", retrieved_at=datetime(2026, 1, 1, tzinfo=UTC),
        source_version="v",
    )  # fmt: skip


def test_ties_for_finest_name_every_tied_dataset():
    report = build_report(
        {
            "a": manifest("a", [8, 8, 8]),
            "b": manifest("b", [8, 8, 8]),
            "c": manifest("c", [5, 5, 50]),
            "d": manifest("d", [20, 20, 20]),
        }
    )
    findings = report.findings
    assert findings.finest.datasets == ["a", "b"] and findings.finest.voxel_size_nm == [8, 8, 8]
    assert findings.coarsest.datasets == ["d"] and findings.coarsest.voxel_volume_nm3 == 8000


def test_anisotropic_dataset_and_its_ratio():
    report = build_report(
        {"aniso": manifest("aniso", [8, 8, 50]), "iso": manifest("iso", [5, 5, 5])}
    )
    findings = report.findings
    assert findings.isotropic_count == 1 and findings.dataset_count == 2
    assert [(a.dataset, a.ratio) for a in findings.anisotropic] == [("aniso", 6.25)]
    assert report.datasets["aniso"].anisotropy == 6.25 and report.datasets["iso"].anisotropy == 1.0
    assert "Anisotropic: aniso (z is 6.25 × the xy size)." in key_findings(report)


def test_technique_variants_group_and_keep_their_names():
    report = build_report(
        {
            "a": manifest("a", [8, 8, 8], technique="FIB-SEM"),
            "b": manifest("b", [8, 8, 8], technique="FIB-SEM (Janelia enhanced FIB-SEM)"),
            "c": manifest("c", [8, 8, 8], technique="Enhanced FIB-SEM"),
            "d": manifest("d", [8, 8, 50], technique="SBF-SEM"),
        }
    )
    techniques = report.findings.techniques
    assert list(techniques) == ["FIB-SEM", "SBF-SEM"]
    assert techniques["FIB-SEM"].count == 3 and techniques["FIB-SEM"].percent == 75.0
    assert techniques["SBF-SEM"].count == 1 and techniques["SBF-SEM"].percent == 25.0
    assert report.datasets["c"].technique == "Enhanced FIB-SEM"
    assert report.datasets["c"].technique_group == "FIB-SEM"


@pytest.mark.parametrize(
    ("name", "group"),
    [("Serial block-face SEM (Gatan 3View)", "SBF-SEM"), ("SBEM", "SBF-SEM"),
     ("focused ion beam SEM", "FIB-SEM"), ("ssTEM", "ssTEM"), ("cryo-ET", "cryo-ET")],
)  # fmt: skip
def test_technique_names_normalise(name, group):
    assert technique_group(name) == group


def test_organisms_are_distinct_and_sorted():
    report = build_report(
        {
            "a": manifest("a", [8, 8, 8], organism="Mus musculus"),
            "b": manifest("b", [8, 8, 8], organism="Homo sapiens"),
            "c": manifest("c", [8, 8, 8], organism="Mus musculus"),
        }
    )
    assert report.findings.organisms == ["Homo sapiens", "Mus musculus"]


def test_sizes_total_and_span_with_an_empty_dataset():
    report = build_report(
        {
            "big": manifest("big", [8, 8, 8], sizes=(10**9, 10**9)),
            "small": manifest("small", [8, 8, 8], sizes=(2 * 10**5,)),
            "empty": manifest("empty", [8, 8, 8], sizes=()),
        }
    )
    findings = report.findings
    assert findings.total_bytes == 2 * 10**9 + 2 * 10**5
    assert findings.size_span_orders_of_magnitude == 4.0  # 2e9 / 2e5, empty one left out
    assert findings.largest == ["big"] and findings.smallest == ["small"]
    assert findings.empty_datasets == ["empty"]
    assert report.datasets["empty"].file_count == 0


def test_table_and_markdown_carry_every_dataset():
    manifests = {n: manifest(n, [n_ * 2.0] * 3) for n_, n in enumerate(["a", "b", "c"], start=1)}
    report = build_report(manifests)
    table = comparison_table(report)
    assert list(table.dataset) == ["a", "b", "c"]
    assert list(table.voxel_z_nm) == [2.0, 4.0, 6.0]
    text = markdown(report, table)
    assert "| dataset | technique |" in text
    for name in manifests:
        assert f"| {name} | FIB-SEM |" in text


def test_the_labels_column_names_each_label_and_how_it_was_stored():
    labelled = manifest("hemi", [8, 8, 8])
    label = {
        "path": "hemi/crop/labels/x", "source_url": "precomputed://x", "source_level": "mip 0",
        "source_version": "v", "voxel_size_nm": [8, 8, 8], "translation_nm": [0, 0, 0],
        "dtype": "uint64", "shape": [1, 1, 1], "offset_voxels": [0, 0, 0],
        "description": "d", "nonzero_fraction": 0.5, "outside_value": 0,
    }  # fmt: skip
    labelled.labels = [
        LabelInfo(name="segmentation", treatment="copied", **label),
        LabelInfo(name="mito", treatment="native_resolution", **label),
    ]
    report = build_report({"hemi": labelled, "plain": manifest("plain", [5, 5, 5])})
    table = comparison_table(report)
    assert list(table.labels) == ["segmentation (copied), mito (native resolution)", ""]
    rendered = markdown(report, table)
    assert "| labels |" in rendered
    assert "| segmentation (copied), mito (native resolution) |" in rendered
    assert rendered.count("| — |") == 1
