"""Crop output written by tensorstore: the same OME-Zarr as zarr-python writes, on local and
S3 roots; zarr-python kept where tensorstore does not write; a chunk that cannot be written
fails the copy."""

from __future__ import annotations

import json
import logging

import numcodecs
import numpy as np
import pytest
import zarr
from upath import UPath

from em_assets.crops.chunk_writer import (
    TensorstoreBlockWriter,
    ZarrBlockWriter,
    block_writer,
)
from em_assets.crops.copy import copy_crop, stored_digest
from em_assets.crops.geometry import Box
from em_assets.crops.ome_zarr import COMPRESSOR, ImageSpec, create_image, open_image

LOG = logging.getLogger("test")
CHUNK = (32, 32, 32)
SHAPE_ZYX = (80, 96, 100)  # not multiples of the chunk: edge chunks are partial
CROP = Box((0, 0, 0), (100, 96, 80))


def volume() -> np.ndarray:
    """Texture with one all-zero chunk (not stored by either writer) at the origin."""
    data = np.random.default_rng(18).integers(1, 255, SHAPE_ZYX).astype(np.uint8)
    data[:32, :32, :32] = 0
    return data


def spec() -> ImageSpec:
    return ImageSpec("t", SHAPE_ZYX, CHUNK, "uint8", (8.0, 8.0, 8.0), (0.0, 0.0, 0.0))


def copy_into(path: UPath, data: np.ndarray, writer_of=block_writer, planted: bytes = b""):
    """Copy `data` into a new image at `path`; `planted`: a file where the chunk directory
    `s0/1` belongs, so the chunks under it cannot be stored."""
    output = create_image(path, spec())
    if planted:
        (path / "s0" / "1").write_bytes(planted)

    def read(box: Box) -> tuple[np.ndarray, int]:
        return data[box.zyx_slices()], 0

    writer = writer_of(output)
    result = copy_crop(read, CROP, CHUNK, (64, 64, 32), output, LOG, "t", 2, writer)
    return writer, result


def chunk_keys(path: UPath) -> set[str]:
    array = path / "s0"
    return {
        p.removeprefix(array.path).strip("/")
        for p in array.fs.find(array.path)
        if not p.rsplit("/", 1)[-1].startswith(".")
    }


def test_tensorstore_writes_what_zarr_python_writes(tmp_path):
    data = volume()
    ts_path, zarr_path = UPath(tmp_path / "ts.ome.zarr"), UPath(tmp_path / "zarr.ome.zarr")
    writer, result = copy_into(ts_path, data)
    assert isinstance(writer, TensorstoreBlockWriter)
    _, reference_result = copy_into(zarr_path, data, ZarrBlockWriter)

    _, array = open_image(ts_path)
    np.testing.assert_array_equal(array[:], data)
    assert result.content_digest == reference_result.content_digest
    assert result.content_digest == stored_digest(array, CHUNK[::-1])
    # Metadata untouched (zarr-python wrote it), the same chunks stored, the fill-value chunk
    # left out by both, each chunk a Blosc zstd-1 frame of the whole (padded) chunk.
    for name in (".zgroup", ".zattrs", "s0/.zarray", "s0/.zattrs"):
        assert (ts_path / name).read_text() == (zarr_path / name).read_text()
    metadata = json.loads((ts_path / "s0" / ".zarray").read_text())
    assert metadata["compressor"] == COMPRESSOR.get_config()
    assert metadata["dimension_separator"] == "/"
    keys = chunk_keys(ts_path)
    assert keys == chunk_keys(zarr_path)
    assert "0/0/0" not in keys and len(keys) == 3 * 3 * 4 - 1
    frame = (ts_path / "s0" / "2" / "2" / "3").read_bytes()
    assert numcodecs.blosc.cbuffer_complib(frame) == "Zstd"
    chunk = np.frombuffer(COMPRESSOR.decode(frame), np.uint8).reshape(CHUNK)
    np.testing.assert_array_equal(chunk[:16, :, :4], data[64:, 64:, 96:])


def test_tensorstore_writes_to_s3_roots(s3_replica):
    s3_replica.create_bucket("crops")
    path = UPath("s3://crops/root/ts.ome.zarr")
    data = volume()
    writer, result = copy_into(path, data)
    assert isinstance(writer, TensorstoreBlockWriter)
    _, array = open_image(path)
    np.testing.assert_array_equal(array[:], data)
    assert result.content_digest == stored_digest(array, CHUNK[::-1])
    assert "0/0/0" not in chunk_keys(path) and "2/2/3" in chunk_keys(path)


def test_zarr_python_writes_where_tensorstore_does_not(gcs_replica):
    memory = zarr.create_array(zarr.storage.MemoryStore(), shape=SHAPE_ZYX, dtype="uint8")
    assert isinstance(block_writer(memory), ZarrBlockWriter)
    import gcsfs

    gcsfs.GCSFileSystem().mkdir("crops")
    path = UPath("gs://crops/ts.ome.zarr")
    data = volume()
    writer, _ = copy_into(path, data)
    assert isinstance(writer, ZarrBlockWriter)
    np.testing.assert_array_equal(open_image(path)[1][:], data)


@pytest.mark.parametrize("writer_of", [block_writer, ZarrBlockWriter])
def test_a_chunk_that_cannot_be_written_fails_the_copy(tmp_path, writer_of):
    path = UPath(tmp_path / "crop.ome.zarr")
    with pytest.raises(Exception) as failure:
        copy_into(path, volume(), writer_of, planted=b"in the way")
    assert "s0/1" in str(failure.value) or isinstance(failure.value, OSError)
