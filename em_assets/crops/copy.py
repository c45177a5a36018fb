"""Copying a crop block by block, so memory holds one block whatever the crop's size.

While copying, content statistics and a content digest are accumulated. The digest is
taken per output chunk and combined in chunk order, so it does not depend on the block
size or the order blocks were copied in, and a stored crop can be re-verified chunk by
chunk without holding it in memory.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import zarr

from em_assets.crops.geometry import Box, Vec, blocks
from em_assets.crops.statistics import RunningStatistics
from em_assets.transfer.progress import Logger

ChunkIndex = tuple[int, int, int]


@dataclass(frozen=True)
class CopyResult:
    statistics: dict[str, float]
    content_digest: str
    blocks: int
    chunks: int
    seconds: float


def chunk_digests(data: np.ndarray, block: Box, chunk: Vec) -> dict[ChunkIndex, str]:
    """sha256 of each output chunk inside `block` (relative to the crop), keyed z, y, x."""
    digests = {}
    for piece in blocks(Box((0, 0, 0), block.size), chunk):
        sub = data[piece.zyx_slices()]
        origin = (block.offset[i] + piece.offset[i] for i in range(3))
        x, y, z = (o // c for o, c in zip(origin, chunk, strict=True))
        digests[(z, y, x)] = hashlib.sha256(np.ascontiguousarray(sub).tobytes()).hexdigest()
    return digests


def combine_digests(digests: dict[ChunkIndex, str], shape_zyx: Iterable[int], dtype: str) -> str:
    combined = hashlib.sha256(f"{list(shape_zyx)}|{dtype}".encode())
    for key in sorted(digests):
        combined.update(bytes.fromhex(digests[key]))
    return combined.hexdigest()


def copy_crop(
    read: Callable[[Box], np.ndarray],
    crop: Box,
    chunk: Vec,
    block: Vec,
    output: zarr.Array,
    log: Logger,
    label: str,
) -> CopyResult:
    """Read `crop` from the source in `block`-sized pieces and write each into `output`."""
    started = time.monotonic()
    statistics = RunningStatistics()
    digests: dict[ChunkIndex, str] = {}
    planned = list(blocks(crop, block))
    last_report = started
    for done, source_box in enumerate(planned, start=1):
        data = read(source_box)
        expected = source_box.size[::-1]
        if data.shape != expected:
            raise ValueError(f"{label}: read {data.shape} for a block of {expected} (z, y, x)")
        relative = source_box.relative_to(crop.offset)
        output[relative.zyx_slices()] = data
        statistics.add(data)
        digests.update(chunk_digests(data, relative, chunk))
        now = time.monotonic()
        if now - last_report >= 10 or done == len(planned):
            last_report = now
            rate = len(digests) / max(now - started, 1e-9)
            log.info(
                f"{label}: {done} of {len(planned)} blocks, {len(digests)} chunks ({rate:.0f}/s)"
            )
    return CopyResult(
        statistics=statistics.summary(),
        content_digest=combine_digests(digests, crop.size[::-1], str(output.dtype)),
        blocks=len(planned),
        chunks=len(digests),
        seconds=time.monotonic() - started,
    )


def stored_digest(array: zarr.Array, chunk: Vec) -> str:
    """Recompute the content digest of a stored crop, one output chunk at a time."""
    shape_zyx = array.shape
    whole = Box((0, 0, 0), (shape_zyx[2], shape_zyx[1], shape_zyx[0]))
    digests: dict[ChunkIndex, str] = {}
    for piece in blocks(whole, chunk):
        digests.update(chunk_digests(array[piece.zyx_slices()], piece, chunk))
    return combine_digests(digests, shape_zyx, str(array.dtype))
