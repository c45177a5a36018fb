"""The file-set flow, shared by every dataset that is a set of files over HTTP (EPFL, EMPIAR,
IDR): probe → download → describe → manifest, under the dataset's one-writer lease.

A file-set dataset module supplies only what is its own, as a `FileSetDataset`: its facts,
how to probe its source (which files, their versions, any metadata document), how to read
a stored file's header, and how to describe the whole from its own metadata. The lease, the
HTTP client's life, the download, the manifest's common fields, `settle` and the thumbnail
are here, once; the source check reuses the same probe (`current_version`).

An unchanged refresh reads no stored byte here: a file kept on its unchanged fingerprint is
described from what its manifest entry recorded of its header (when the dataset can rebuild
its header from that, `recorded_header`), and the thumbnail of the same data version is the
one shown last time.

The crop flow (`datasets.crop_flow`) is the other kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from dagster import AssetCheckResult, AssetExecutionContext, MaterializeResult, MetadataValue
from upath import UPath

from em_assets.datasets import downloads
from em_assets.datasets.downloads import Described, RemoteFile
from em_assets.images.build import build_images
from em_assets.images.convert import ImageSource
from em_assets.logger import Logger
from em_assets.manifest.materialization import materialization, settle
from em_assets.manifest.model import DatasetFacts, FileEntry, build_manifest
from em_assets.manifest.thumbnail import recorded_thumbnail, thumbnail_metadata
from em_assets.refresh.probe import SourceAccess
from em_assets.refresh.verification import VerifiedConfig
from em_assets.storage.root import StorageRoot
from em_assets.transfer.client import HttpClient, RemoteVersion
from em_assets.transfer.content import ExpectedFormat
from em_assets.transfer.resource import HttpTransfer


@dataclass(frozen=True)
class ProbeRequest:
    """What a probe may use: the client, the storage root, the dataset's resources by key
    and the run config it is asked for."""

    client: HttpClient
    storage: StorageRoot
    resources: Mapping[str, Any]
    config: VerifiedConfig
    log: Logger

    def resource(self, key: str) -> Any:
        return self.resources[key]


@dataclass(frozen=True)
class FileSetProbe:
    """What the source says now, by metadata only: enough to decide what to fetch, and the
    source's version (its files' validators plus any metadata document)."""

    files: list[RemoteFile]
    remotes: dict[str, RemoteVersion]
    source_urls: list[str]
    """Where the manifest says the data came from (pages, listings, API documents, files)."""
    document: Any = None
    """The metadata document that is part of the version (an API answer), if any."""
    details: Any = None
    """Anything else the dataset's `describe` needs from its probe (its own type)."""

    @property
    def version(self) -> str:
        return downloads.source_version(self.remotes, self.document)


@dataclass(frozen=True)
class Header:
    """What one stored file's header says: shape and dtype, plus whatever else the dataset
    reads from it (a calibration, a slice thickness) for its cross-checks."""

    shape: list[int]
    dtype: str
    extra: Any = None
    recorded: dict[str, Any] | None = None
    """`extra` (and anything else the checks need) as the manifest records it, so
    `FileSetDataset.recorded_header` can rebuild this header without reading the file."""


@dataclass(frozen=True)
class Stored:
    """The stored files, as the dataset's `describe` sees them."""

    probe: FileSetProbe
    entries: list[FileEntry]
    headers: dict[str, Header]
    """By file name."""
    root: UPath
    log: Logger


@dataclass(frozen=True)
class Description:
    """What a dataset reads from its own metadata once its files are stored."""

    voxel_size_nm: list[float]
    voxel_size_source: str
    shape: list[int]
    dtype: str
    provenance: dict[str, str]
    images: list[ImageSource]
    """The stored files as images (converted to OME-Zarr by `images.build`)."""
    thumbnail: Callable[[], tuple[np.ndarray, str]]
    """A plane to show and what it is; read only when no thumbnail of the same data version
    was shown before."""
    fields: dict[str, Any] = field(default_factory=dict)
    """Manifest fields the source states itself (title, technique, doi), over the facts."""
    metadata: dict[str, MetadataValue] = field(default_factory=dict)
    check_results: list[AssetCheckResult] = field(default_factory=list)


@dataclass(frozen=True)
class FileSetDataset:
    name: str
    facts: DatasetFacts
    config: type[VerifiedConfig]
    expected_format: ExpectedFormat
    probe: Callable[[ProbeRequest], FileSetProbe]
    """Metadata only (HEAD per file, the source's documents): also the source check's."""
    read_header: Callable[[UPath], Header]
    describe: Callable[[Stored], Description]
    refuse: Callable[[FileSetProbe], None] = lambda probe: None
    """Raises if the source, as probed, cannot be described (say, no pixel size), so the
    asset fails before any file moves; the source check still records the version."""
    recorded_header: Callable[[FileEntry], Header | None] | None = None
    """The header of a file kept on its unchanged fingerprint, rebuilt from what its entry
    recorded (None: not enough recorded, the file is read). Without it every kept file's
    header is read again."""


def materialize_file_set(
    dataset: FileSetDataset,
    context: AssetExecutionContext,
    config: VerifiedConfig,
    storage: StorageRoot,
    http: HttpTransfer,
    resources: Mapping[str, Any],
) -> MaterializeResult:
    """The asset body of every file-set dataset: one lease, one client, one manifest."""
    log = context.log
    with storage.lease(dataset.name, context.run.run_id, log):
        previous = storage.stored_manifest(dataset.name, log)
        headers: dict[str, Header] = {}

        def shape_and_dtype(path: UPath, earlier: FileEntry | None) -> Described:
            header = None
            if earlier is not None and dataset.recorded_header is not None:
                header = dataset.recorded_header(earlier)
            header = header or dataset.read_header(path)
            headers[path.name] = header
            return Described(header.shape, header.dtype, header.recorded)

        client = http.client(log)
        try:
            found = dataset.probe(ProbeRequest(client, storage, resources, config, log))
            dataset.refuse(found)
            fetched = downloads.download(
                client, found.files, found.remotes, previous, dataset.expected_format,
                shape_and_dtype, log, config.deep,
            )  # fmt: skip
        finally:
            client.close()
        described = dataset.describe(Stored(found, fetched.entries, headers, storage.base(), log))
        facts = dataset.facts
        images = build_images(
            storage, dataset.name, described.images, described.voxel_size_nm, facts.title, log
        )
        manifest = build_manifest(
            **{
                "title": facts.title,
                "technique": facts.technique,
                "organism": facts.organism,
                "sample": facts.sample,
                "doi": facts.doi,
                **described.fields,
            },
            dataset=dataset.name,
            voxel_size_nm=described.voxel_size_nm,
            voxel_size_source=described.voxel_size_source,
            axes=["z", "y", "x"],
            shape=described.shape,
            dtype=described.dtype,
            files=fetched.entries,
            source_urls=found.source_urls,
            license=facts.license,
            citation=facts.citation,
            retrieved_at=datetime.now(UTC),
            run_config=config.recorded(),
            source_version=found.version,
            images=images,
            provenance=described.provenance,
        )
        manifest, unchanged = settle(manifest, previous)
        shown = recorded_thumbnail(context.instance, context.asset_key, manifest.content_version())
        return materialization(
            manifest,
            unchanged,
            fetched.payload_bytes,
            metadata=described.metadata,
            check_results=described.check_results,
            thumbnail=shown or thumbnail_metadata(*described.thumbnail()),
        )


def current_version(dataset: FileSetDataset) -> Callable[[SourceAccess, dict[str, Any]], str]:
    """The source check's probe: the same probe the asset runs, with the stored run config."""

    def version(access: SourceAccess, run_config: dict[str, Any]) -> str:
        request = ProbeRequest(
            access.client, access.storage, access.resources, dataset.config(**run_config),
            access.log,
        )  # fmt: skip
        return dataset.probe(request).version

    return version
