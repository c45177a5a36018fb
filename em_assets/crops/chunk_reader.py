"""Reading source chunks with tensorstore, telling "never written" apart from "unreadable".

tensorstore decodes precomputed (sharded or not) and zarr chunks in its own thread pool,
several times faster than cloud-volume or zarr-python on the same bytes (benchmarks/).

Absence is what the formats define it to be: in an unsharded precomputed layer a chunk
answered 404, in a sharded one a chunk missing from its shard's index (or a missing shard),
and in zarr a missing chunk key, all mean "never written" and read as the fill value
(Neuroglancer renders them as zeros). Every store is opened with
`fill_missing_data_reads=False`, so an absent chunk surfaces as NOT_FOUND instead of being
filled silently; only then is the block read again chunk by chunk, to learn which chunks
are absent and count them. tensorstore 0.1.86 does not report absence that way for sharded
precomputed scales (it fills), so there a chunk that read as nothing but the fill value is
looked up in its shard's index (cached; a zero-byte read through tensorstore's
`neuroglancer_uint64_sharded` key-value store). Either way this costs nothing for a block
of tissue, needs no listing (the public buckets forbid it and hold millions of objects)
and no extra request per chunk present. Anything else — 403, 5xx after retries, a chunk
that fails to decode — fails the read: nothing unreadable is ever turned into zeros.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from em_assets.crops.geometry import Box, Vec, blocks

# Decoded chunks are read once, so caching them would only hold memory; shard and minishard
# indices are small (a few KiB per shard) and read for every chunk of a shard, so they do get
# a little room. 4 MiB, not 16: on a 1000³ copy the larger pool held decoded chunks and
# raised the peak RSS (benchmarks/crop_copy.py) without making the copy faster.
CACHE_BYTES = 4 * 1024 * 1024
# As patient as the HTTP engine (transfer/retry.py): transient failures (5xx, 429, dropped
# connections) are retried with backoff, then fail the read.
RETRIES = {"max_retries": 6, "initial_delay": "1s", "max_delay": "32s"}
GCS_PUBLIC_HTTP = "https://storage.googleapis.com"
ABSENT = "NOT_FOUND"


class SourceReadError(RuntimeError):
    """Part of a source volume could not be read; nothing is filled in its place."""


def context_spec() -> dict[str, Any]:
    return {
        "cache_pool": {"total_bytes_limit": CACHE_BYTES},
        "http_request_retries": RETRIES,
        "s3_request_retries": RETRIES,
    }


def kvstore_spec(url: str) -> dict[str, Any]:
    """The tensorstore key-value store for a directory URL, read anonymously.

    gs:// is read over GCS's public HTTP endpoint (the hemibrain bucket is public), or
    STORAGE_EMULATOR_HOST when set, as google-cloud-storage and gcsfs do. s3:// uses the
    s3 driver without credentials and AWS_ENDPOINT_URL when set, as boto3 and s3fs do.
    """
    parts = urlsplit(url.rstrip("/"))
    if parts.scheme in ("http", "https"):
        return {"driver": "http", "base_url": f"{parts.geturl()}/"}
    if parts.scheme == "gs":
        host = os.environ.get("STORAGE_EMULATOR_HOST", GCS_PUBLIC_HTTP).rstrip("/")
        return {"driver": "http", "base_url": f"{host}/{parts.netloc}{parts.path}/"}
    if parts.scheme == "s3":
        spec: dict[str, Any] = {
            "driver": "s3",
            "bucket": parts.netloc,
            "path": f"{parts.path.lstrip('/')}/",
            "aws_credentials": {"type": "anonymous"},
        }
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            spec["endpoint"] = endpoint
            spec["aws_region"] = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        return spec
    raise ValueError(f"{url}: tensorstore reads http(s)://, gs:// and s3:// here")


def is_absent(error: Exception) -> bool:
    """tensorstore reports a status code as the message's prefix (absl::Status)."""
    return str(error).startswith(f"{ABSENT}:")


@dataclass
class ShardIndex:
    """Which chunks of a sharded precomputed scale were written, from the shard indices.

    Chunk keys are compressed Morton codes of the chunk's grid position (cloud-volume's
    implementation of the sharded format's key, big-endian uint64 as tensorstore expects).
    """

    kvstore: Any  # tensorstore.KvStore, neuroglancer_uint64_sharded over the scale's directory
    bounds: Box
    chunk: Vec

    def absent(self, pieces: list[Box]) -> int:
        from cloudvolume.datasource.precomputed.common import compressed_morton_code

        grid = [-(-self.bounds.size[i] // self.chunk[i]) for i in range(3)]
        futures = []
        for piece in pieces:
            position = [
                (piece.offset[i] - self.bounds.offset[i]) // self.chunk[i] for i in range(3)
            ]
            key = int(compressed_morton_code(position, grid)).to_bytes(8, "big")
            futures.append(self.kvstore.read(key, byte_range=slice(0, 0)))
        return sum(future.result().state == "missing" for future in futures)


@dataclass
class ChunkReader:
    """A tensorstore array seen in x, y, z order, read strictly (see the module docstring).

    `store` must be indexed in x, y, z voxel coordinates of the level; `grid_origin` is
    where its chunk grid starts.
    """

    store: Any  # tensorstore.TensorStore, imported lazily (0.2 s) by the openers below
    chunk: Vec
    grid_origin: Vec
    fill_value: Any
    where: str
    shard_index: ShardIndex | None = None

    def read(self, box: Box) -> tuple[np.ndarray, int]:
        """The voxels of `box` (z, y, x) and how many source chunks in it were absent."""
        try:
            data = self._region(box).read().result()
        except ValueError as error:
            if not is_absent(error):
                raise self._failure(box, error) from error
            return self._read_by_chunk(box)
        if self.shard_index is None:
            return data, 0
        blank = [
            piece
            for piece in self._chunks_in(box)
            if not (data[piece.relative_to(box.offset).zyx_slices()] != self.fill_value).any()
        ]
        try:
            return data, self.shard_index.absent(blank) if blank else 0
        except ValueError as error:
            raise self._failure(box, error) from error

    def _region(self, box: Box) -> Any:
        (x0, y0, z0), (x1, y1, z1) = box.offset, box.end
        return self.store[x0:x1, y0:y1, z0:z1].T  # z, y, x, copied in that order by tensorstore

    def _read_by_chunk(self, box: Box) -> tuple[np.ndarray, int]:
        if self.fill_value is None:
            raise SourceReadError(
                f"{self.where}: chunks in {_describe(box)} are absent and the array "
                "defines no fill_value, so their content is undefined"
            )
        data = np.full(box.size[::-1], self.fill_value, dtype=self.store.dtype.numpy_dtype)
        pieces = [(piece, self._region(piece).read()) for piece in self._chunks_in(box)]
        absent = 0
        for piece, future in pieces:
            try:
                values = future.result()
            except ValueError as error:
                if not is_absent(error):
                    raise self._failure(piece, error) from error
                absent += 1
                continue
            data[piece.relative_to(box.offset).zyx_slices()] = values
        return data, absent

    def _chunks_in(self, box: Box) -> list[Box]:
        """`box` cut along the source chunk grid: one piece per chunk it touches."""
        start = tuple(
            self.grid_origin[i]
            + (box.offset[i] - self.grid_origin[i]) // self.chunk[i] * self.chunk[i]
            for i in range(3)
        )
        grid = Box(start, tuple(box.end[i] - start[i] for i in range(3)))  # type: ignore[arg-type]  # 3 items, typed tuple[int, ...]
        return [_clip(piece, box) for piece in blocks(grid, self.chunk)]

    def _failure(self, box: Box, error: Exception) -> SourceReadError:
        return SourceReadError(
            f"{self.where}: could not read {_describe(box)} ({error}); refusing to fill it "
            "with zeros — only chunks the format marks as never written are filled"
        )


def _clip(piece: Box, box: Box) -> Box:
    low = tuple(max(piece.offset[i], box.offset[i]) for i in range(3))
    high = tuple(min(piece.end[i], box.end[i]) for i in range(3))
    return Box(low, tuple(high[i] - low[i] for i in range(3)))  # type: ignore[arg-type]  # 3 items, typed tuple[int, ...]


def _describe(box: Box) -> str:
    (x0, y0, z0), (x1, y1, z1) = box.offset, box.end
    return f"x {x0}-{x1}, y {y0}-{y1}, z {z0}-{z1}"


def _open(spec: dict[str, Any], context: Any = None) -> Any:
    import tensorstore as ts

    context = context or ts.Context(context_spec())
    return ts.open({**spec, "fill_missing_data_reads": False}, read=True, context=context).result()


def open_precomputed_scale(url: str, scale: dict[str, Any]) -> tuple[Any, ShardIndex | None]:
    """One scale of a neuroglancer precomputed layer, indexed x, y, z (channel 0), and its
    shard index when sharded (sharing the cache, so indices are fetched once)."""
    import tensorstore as ts

    context = ts.Context(context_spec())
    spec = {"driver": "neuroglancer_precomputed", "kvstore": kvstore_spec(url)}
    store = _open({**spec, "scale_metadata": {"key": scale["key"]}}, context)[..., 0]
    if "sharding" not in scale:
        return store, None
    kvstore = ts.KvStore.open(
        {
            "driver": "neuroglancer_uint64_sharded",
            "base": kvstore_spec(f"{url.rstrip('/')}/{scale['key']}"),
            "metadata": scale["sharding"],
        },
        context=context,
    ).result()
    bounds = Box(tuple(scale["voxel_offset"]), tuple(scale["size"]))
    return store, ShardIndex(kvstore, bounds, tuple(scale["chunk_sizes"][0]))


def open_zarr_array(url: str) -> Any:
    """A zarr v2 array, indexed z, y, x as stored; `.T` gives x, y, z."""
    return _open({"driver": "zarr", "kvstore": kvstore_spec(url)})
