"""The storage root setting, safe paths under it, and the JSON IO manager on three backends."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from dagster import AssetKey, DagsterInstance, asset, materialize
from upath import UPath

from em_assets.manifest.model import FileEntry, Manifest, build_manifest
from em_assets.settings import ConfigurationError
from em_assets.storage.io_manager import JsonIOManagerFactory, MissingAssetValueError
from em_assets.storage.root import StorageRoot, child_path, parse_root


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("s3:/bucket/prefix", "without '//'"),
        ("nosuch://bucket/x", "unknown protocol 'nosuch'"),
        ("https://example.org/data", "read-only"),
        ("s3://", "names no bucket"),
        ("gs:///prefix", "names no bucket"),
        ("adl:///prefix", "names no bucket"),  # every object store staging writes directly
        ("s3://key:secret@bucket/prefix", "must not carry credentials"),
    ],
)
def test_malformed_roots_are_explained(value, complaint):
    with pytest.raises(ConfigurationError) as caught:
        parse_root(value)
    assert "EM_ASSETS_ROOT" in str(caught.value)
    assert complaint in str(caught.value)
    if "secret" in value:
        assert "secret" not in str(caught.value)  # never echo credentials into logs


@pytest.mark.parametrize(
    ("value", "protocol"),
    [("./em_data", ""), ("file:///tmp/em", "file"), ("memory://em", "memory"), ("s3://b/p", "s3")],
)
def test_well_formed_roots_parse(value, protocol):
    assert parse_root(value).protocol == protocol


def test_relative_local_root_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert str(parse_root("./em_data")) == str(tmp_path / "em_data")


@pytest.mark.parametrize(
    "name",
    [
        "..",
        "../../x.dm3",
        "/etc/passwd",
        "a/b.dm3",
        "http://elsewhere/x.dm3",
        "x.dm3?sig=1",
        "",
        ".hidden",
    ],
)
def test_names_that_could_escape_are_refused(tmp_path, name):
    with pytest.raises(ConfigurationError, match="refusing file name"):
        child_path(UPath(tmp_path), name)


def test_plain_names_are_joined(tmp_path):
    name = "F57-8_test1_3VBSED_slice_0000.dm3"
    assert child_path(UPath(tmp_path), name) == UPath(tmp_path) / name


def sample_manifest() -> Manifest:
    return build_manifest(
        dataset="roundtrip",
        title="t",
        technique="FIB-SEM",
        organism="Mus musculus",
        sample="s",
        voxel_size_nm=[5, 5, 5],
        voxel_size_source="test",
        axes=["z", "y", "x"],
        shape=[2, 3, 4],
        dtype="uint8",
        files=[FileEntry(path="roundtrip/a.tif", bytes=10, sha256="a" * 64)],
        source_urls=["http://example.invalid/a.tif"],
        license="CC0",
        citation="c",
        retrieved_at=datetime(2026, 1, 2, tzinfo=UTC),
        source_version="v1",
    )


@asset
def producer() -> Manifest:
    return sample_manifest()


@asset
def consumer(producer: Manifest) -> dict:
    assert isinstance(producer, Manifest)
    return {"voxel": producer.voxel_size_nm, "files": producer.file_count}


def roundtrip(root: str) -> UPath:
    storage = StorageRoot(root=root)
    result = materialize(
        [producer, consumer],
        resources={"io_manager": JsonIOManagerFactory(storage=storage)},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    base = storage.base()
    stored = json.loads((base / "producer.json").read_text())
    assert Manifest.model_validate(stored) == sample_manifest()
    assert json.loads((base / "consumer.json").read_text()) == {
        "voxel": [5.0, 5.0, 5.0],
        "files": 1,
    }
    assert storage.stored_manifest("producer") == sample_manifest()
    return base


def test_io_manager_round_trip_on_local_disk(tmp_path):
    base = roundtrip(str(tmp_path / "root"))
    assert not list(UPath(base).glob("*.tmp"))


def test_io_manager_round_trip_in_memory():
    base = roundtrip("memory://io-manager-test")
    base.fs.rm(base.path, recursive=True)


def test_io_manager_round_trip_on_s3(s3_replica):
    s3_replica.create_bucket("em-roundtrip")
    roundtrip("s3://em-roundtrip/prefix")
    keys = [
        o["Key"] for o in s3_replica.client().list_objects_v2(Bucket="em-roundtrip")["Contents"]
    ]
    assert sorted(keys) == ["prefix/consumer.json", "prefix/producer.json"]


def test_missing_upstream_value_says_how_to_build_it(tmp_path):
    storage = StorageRoot(root=str(tmp_path))
    result = materialize(
        [producer, consumer],
        selection=[AssetKey("consumer")],
        resources={"io_manager": JsonIOManagerFactory(storage=storage)},
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    text = error.to_string()
    assert MissingAssetValueError.__name__ in text
    assert "dagster asset materialize -m em_assets --select 'producer'" in text


def test_unreadable_previous_manifest_is_treated_as_absent(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    assert StorageRoot(root=str(tmp_path)).stored_manifest("broken") is None
