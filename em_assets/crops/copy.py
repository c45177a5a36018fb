"""Copying a crop block by block, in parallel, so memory holds a few blocks whatever its size.

While copying, content statistics and a content digest are accumulated. The digest is
taken per output chunk and combined in chunk order, so it does not depend on the block
size, the order blocks were copied in, or which worker (or which partition, on which
machine) copied them; a stored crop can be re-verified chunk by chunk.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np
import zarr

from em_assets.crops.chunk_writer import BlockWriter, block_writer
from em_assets.crops.geometry import Box, Vec, block_shape, blocks
from em_assets.crops.statistics import RunningStatistics
from em_assets.garbage_collection import loaded_objects_out_of_gc
from em_assets.logger import Logger

ChunkIndex = tuple[int, int, int]
VERIFY_BLOCK_VOXELS = 256**3


@dataclass
class CopiedBlocks:
    """What a set of copied blocks contributes: mergeable across workers and partitions."""

    statistics: RunningStatistics = field(default_factory=RunningStatistics)
    digests: dict[ChunkIndex, str] = field(default_factory=dict)
    blocks: int = 0
    absent_chunks: int = 0
    """Source chunks never written (read as the fill value). Blocks are whole source
    chunks, so the counts of disjoint blocks add up without counting a chunk twice."""

    def merge(self, other: CopiedBlocks) -> None:
        self.statistics.merge(other.statistics)
        self.digests.update(other.digests)
        self.blocks += other.blocks
        self.absent_chunks += other.absent_chunks

    def to_json(self) -> dict:
        return {
            "statistics": self.statistics.to_json(),
            "digests": [[*key, value] for key, value in sorted(self.digests.items())],
            "blocks": self.blocks,
            "absent_chunks": self.absent_chunks,
        }

    @classmethod
    def from_json(cls, document: dict) -> CopiedBlocks:
        return cls(
            statistics=RunningStatistics.from_json(document["statistics"]),
            digests={(z, y, x): digest for z, y, x, digest in document["digests"]},
            blocks=document["blocks"],
            absent_chunks=document.get("absent_chunks", 0),  # absent from older partials
        )


@dataclass(frozen=True)
class CopyResult:
    statistics: dict[str, float]
    content_digest: str
    blocks: int
    chunks: int
    seconds: float
    absent_chunks: int = 0


def chunk_digests(data: np.ndarray, block: Box, chunk: Vec) -> dict[ChunkIndex, str]:
    """sha256 of each output chunk inside `block` (relative to the crop), keyed z, y, x."""
    digests = {}
    for piece in blocks(Box((0, 0, 0), block.size), chunk):
        sub = data[piece.zyx_slices()]
        origin = (block.offset[i] + piece.offset[i] for i in range(3))
        x, y, z = (o // c for o, c in zip(origin, chunk, strict=True))
        digests[(z, y, x)] = hashlib.sha256(np.ascontiguousarray(sub).data).hexdigest()
    return digests


def combine_digests(digests: dict[ChunkIndex, str], shape_zyx: Iterable[int], dtype: str) -> str:
    combined = hashlib.sha256(f"{list(shape_zyx)}|{dtype}".encode())
    for key in sorted(digests):
        combined.update(bytes.fromhex(digests[key]))
    return combined.hexdigest()


def result_of(progress: CopiedBlocks, crop: Box, dtype: str, seconds: float) -> CopyResult:
    return CopyResult(
        statistics=progress.statistics.summary(),
        content_digest=combine_digests(progress.digests, crop.size[::-1], dtype),
        blocks=progress.blocks,
        chunks=len(progress.digests),
        seconds=seconds,
        absent_chunks=progress.absent_chunks,
    )


BlockReader = Callable[[Box], tuple[np.ndarray, int]]
"""A block's voxels (z, y, x) and how many of its source chunks were never written."""


def copy_blocks(
    read: BlockReader,
    crop: Box,
    chunk: Vec,
    planned: list[Box],
    output: zarr.Array,
    log: Logger,
    label: str,
    workers: int = 1,
    writer: BlockWriter | None = None,
) -> CopiedBlocks:
    """Copy `planned` blocks of `crop` into `output`, `workers` at a time.

    At most `workers` blocks are read at once and at most twice that are queued, so memory
    stays a few blocks whatever the crop's size. `writer` defaults to the fastest one the
    output's store allows (`chunk_writer.block_writer`); while it encodes and stores a
    block, the worker digests it and adds it to the statistics, and the block counts as
    copied only once its write is committed.
    """
    write = (writer or block_writer(output)).write

    def copy_one(source_box: Box) -> CopiedBlocks:
        data, absent = read(source_box)
        expected = source_box.size[::-1]
        if data.shape != expected:
            raise ValueError(f"{label}: read {data.shape} for a block of {expected} (z, y, x)")
        relative = source_box.relative_to(crop.offset)
        written = write(relative, data)
        part = CopiedBlocks(
            blocks=1, digests=chunk_digests(data, relative, chunk), absent_chunks=absent
        )
        part.statistics.add(data)
        written.result()
        return part

    total = CopiedBlocks()
    started = last_report = time.monotonic()
    with (
        loaded_objects_out_of_gc(),
        ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="em-crop") as pool,
    ):
        pending: set[Future[CopiedBlocks]] = set()
        queue = iter(planned)
        while True:
            while len(pending) < 2 * max(1, workers) and (box := next(queue, None)) is not None:
                pending.add(pool.submit(copy_one, box))
            if not pending:
                break
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                total.merge(future.result())
            now = time.monotonic()
            if now - last_report >= 10 or total.blocks == len(planned):
                last_report = now
                rate = len(total.digests) / max(now - started, 1e-9)
                log.info(
                    f"{label}: {total.blocks} of {len(planned)} blocks, "
                    f"{len(total.digests)} chunks ({rate:.0f}/s)"
                )
    return total


def copy_crop(
    read: BlockReader,
    crop: Box,
    chunk: Vec,
    block: Vec,
    output: zarr.Array,
    log: Logger,
    label: str,
    workers: int = 1,
    writer: BlockWriter | None = None,
) -> CopyResult:
    """Read the whole of `crop` from the source in `block`-sized pieces into `output`."""
    started = time.monotonic()
    progress = copy_blocks(
        read, crop, chunk, list(blocks(crop, block)), output, log, label, workers, writer
    )
    return result_of(progress, crop, str(output.dtype), time.monotonic() - started)


def stored_digest(array: zarr.Array, chunk: Vec, block: Vec | None = None, workers: int = 2) -> str:
    """Recompute the content digest of a stored crop: whole blocks are read (few, large
    reads), digested chunk by chunk, a few blocks at a time."""
    shape_zyx = array.shape
    whole = Box((0, 0, 0), (shape_zyx[2], shape_zyx[1], shape_zyx[0]))
    step = block or block_shape(chunk, VERIFY_BLOCK_VOXELS)

    def digest_block(box: Box) -> dict[ChunkIndex, str]:
        return chunk_digests(np.asarray(array[box.zyx_slices()]), box, chunk)

    digests: dict[ChunkIndex, str] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="em-verify") as pool:
        for part in pool.map(digest_block, blocks(whole, step)):
            digests.update(part)
    return combine_digests(digests, shape_zyx, str(array.dtype))
