"""Writing a crop's blocks into its OME-Zarr array: with tensorstore where the root allows.

zarr-python still creates the image (group, `.zattrs`, `.zarray`: `ome_zarr.py`), so the
layout, compressor, fill value and `dimension_separator` are exactly what readers already
know; tensorstore then opens that same array and writes the chunks. It encodes (Blosc zstd)
and stores them in its own thread pool, outside the GIL, and `write` returns at once, so
the worker that read a block computes its digests and statistics while its chunks are
being encoded and stored. Profiled on a 512³ copy (benchmarks/analysis.md): about half of
the copy's busy samples were zarr-python's writer, mostly Python per-chunk machinery (its
asyncio codec pipeline, a fill-value comparison of every chunk, store writes) around the
Blosc call.

Same guarantees as zarr-python's writer: the commit of every chunk is awaited before a
block counts as copied, and a chunk that cannot be written fails the copy (tensorstore
raises). On a local root each chunk file is written beside its key (`<key>.__lock`) and
renamed into place (tensorstore's file driver, seen with strace; zarr-python's LocalStore
does the same with its own temporary name), so a chunk file is never half-written; on S3
each chunk is one PUT, visible only complete. The crop's store itself is staged as before:
a new directory named by its content, which no manifest points to until the copy has
finished and been digested. Chunks equal to the fill value are not stored by either writer
(zarr-python's `write_empty_chunks=False`, tensorstore's
`store_data_equal_to_fill_value=False`): readers see the fill value.

Where tensorstore writes: local directories (`file` driver) and `s3://` (credentials from
the standard AWS chain, `AWS_ENDPOINT_URL` honoured as s3fs does). Other roots keep
zarr-python: tensorstore's `gcs` driver reaches an emulator only through its own
`TENSORSTORE_GCS_HTTP_URL`, not the `STORAGE_EMULATOR_HOST` gcsfs and Google's clients
honour, and `memory://` is a Python object tensorstore cannot see.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import zarr
from zarr.storage import FsspecStore, LocalStore

from em_assets.crops.chunk_reader import RETRIES
from em_assets.crops.geometry import Box


class PendingWrite(Protocol):
    def result(self) -> Any: ...


class BlockWriter(Protocol):
    """Writes whole-chunk blocks of one array; `region` is x, y, z relative to its origin."""

    def write(self, region: Box, data: np.ndarray) -> PendingWrite: ...


class _Done:
    def result(self) -> None:
        return None


class ZarrBlockWriter:
    """zarr-python's own write: done (or failed) when `write` returns."""

    def __init__(self, array: zarr.Array) -> None:
        self.array = array

    def write(self, region: Box, data: np.ndarray) -> PendingWrite:
        self.array[region.zyx_slices()] = data
        return _Done()


class TensorstoreBlockWriter:
    """tensorstore's write: `result()` returns once every chunk of the block is committed."""

    def __init__(self, store: Any) -> None:
        self.store = store  # tensorstore.TensorStore, z, y, x

    def write(self, region: Box, data: np.ndarray) -> PendingWrite:
        # `data` is never modified after this call, so tensorstore may keep it instead of
        # copying it (the block's reference is held until the commit).
        return (
            self.store[region.zyx_slices()]
            .write(data, can_reference_source_data_indefinitely=True)
            .commit
        )


def block_writer(array: zarr.Array) -> BlockWriter:
    """The fastest writer the array's store allows (see the module docstring)."""
    kvstore = tensorstore_kvstore(array)
    if kvstore is None:
        return ZarrBlockWriter(array)
    import tensorstore as ts

    context = ts.Context(
        {
            # Written chunks are never read again here: no cache, write back at once.
            "cache_pool": {"total_bytes_limit": 0},
            "s3_request_retries": RETRIES,
        }
    )
    store = ts.open(
        {"driver": "zarr", "kvstore": kvstore}, open=True, write=True, context=context
    ).result()
    found = (tuple(store.shape), str(store.dtype.numpy_dtype))
    if found != (tuple(array.shape), str(array.dtype)):
        raise RuntimeError(f"tensorstore opened {kvstore} as {found}, zarr created {array}")
    return TensorstoreBlockWriter(store)


def tensorstore_kvstore(array: zarr.Array) -> dict[str, Any] | None:
    """The tensorstore key-value store of the array's directory, or None where tensorstore
    should not write (see the module docstring)."""
    store, path = array.store, array.path.strip("/")
    if isinstance(store, LocalStore):
        directory = Path(store.root) / path
        return {"driver": "file", "path": f"{directory}/"}
    if isinstance(store, FsspecStore) and "s3" in _protocols(store.fs):
        return _s3_kvstore(store.fs, f"{store.path.strip('/')}/{path}")
    return None


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _s3_kvstore(fs: Any, key_path: str) -> dict[str, Any] | None:
    """The s3 store of `bucket/prefix`, reached as s3fs reaches it; None when s3fs was given
    its own credentials or anonymity (storage options tensorstore would not see)."""
    if getattr(fs, "key", None) or getattr(fs, "anon", False) or getattr(fs, "token", None):
        return None
    bucket, _, prefix = key_path.partition("/")
    spec: dict[str, Any] = {"driver": "s3", "bucket": bucket, "path": f"{prefix.strip('/')}/"}
    endpoint = (getattr(fs, "client_kwargs", None) or {}).get("endpoint_url") or os.environ.get(
        "AWS_ENDPOINT_URL"
    )
    if endpoint:
        spec["endpoint"] = endpoint
        spec["aws_region"] = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    return spec
