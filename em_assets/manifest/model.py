"""The manifest: what an asset fetched, what it is, and where every value came from.

Voxel sizes are always `[x, y, z]` in nanometres (the order EM people quote them in);
`shape` follows `axes`, which is `["z", "y", "x"]` for every volume here (the order the
arrays are stored in).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

ISOTROPY_TOLERANCE = 0.01


def is_isotropic(voxel_size_nm: list[float]) -> bool:
    """All three axes equal within 1 %."""
    return max(voxel_size_nm) <= min(voxel_size_nm) * (1 + ISOTROPY_TOLERANCE)


def version_digest(document: Any) -> str:
    """A short, stable fingerprint of a source's version information."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


class FileEntry(BaseModel):
    """One stored file, or one stored zarr array. `path` is relative to the storage root.

    For a `file`, `sha256` is that of its bytes. For a `zarr_array` (a crop), `bytes` is what
    its objects occupy and `sha256` is the content digest of its decoded voxels (per chunk,
    combined in chunk order), which does not depend on compression.
    """

    path: str
    kind: Literal["file", "zarr_array"] = "file"
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    source_url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    shape: list[int] | None = None
    dtype: str | None = None
    fingerprint: dict[str, Any] | None = Field(
        default=None,
        description="stat or listing of the stored copy when `sha256` was last known to "
        "describe it; an unchanged fingerprint lets a check trust `sha256` without reading "
        "(see storage.fingerprint)",
    )
    header: dict[str, Any] | None = Field(
        default=None,
        description="what the format reader found in the file's header beyond shape and "
        "dtype (a calibration, a page count), read from the bytes `sha256` describes; reused, "
        "like `sha256`, while the fingerprint is unchanged",
    )


class ContentStatistics(BaseModel):
    minimum: float
    maximum: float
    mean: float
    background_fraction: float = Field(ge=0, le=1)


class RejectedCandidate(BaseModel):
    """A crop position that was considered and not kept, and why."""

    offset_voxels: list[int] = Field(min_length=3, max_length=3, description="x, y, z")
    background_fraction: float = Field(ge=0, le=1)
    judged_on: str = Field(description="the coarse probe (which level) or the copied crop")
    reason: str


class CropInfo(BaseModel):
    """Where a crop sits in its source volume and how that place was chosen."""

    offset_voxels: list[int] = Field(min_length=3, max_length=3, description="x, y, z")
    size_voxels: list[int] = Field(min_length=3, max_length=3, description="x, y, z")
    scale: str
    seed: int
    placement: str
    translation_nm: list[float] = Field(min_length=3, max_length=3, description="x, y, z")
    source_base_voxel_size_nm: list[float] = Field(
        min_length=3, max_length=3, description="finest level of the source, x, y, z"
    )
    chunk_count: int = Field(ge=0)
    absent_chunks: int | None = Field(
        default=None,
        ge=0,
        description="source chunks in the crop never written (read as the fill value)",
    )
    statistics: ContentStatistics
    rejected_candidates: list[RejectedCandidate] = Field(
        default_factory=list, description="positions tried before this one, in the order tried"
    )


class LabelInfo(BaseModel):
    """A label image stored inside a crop (NGFF `labels/{name}`), and how it was made.

    Geometry is the label's own: a label at another resolution than its crop keeps that
    resolution, and `voxel_size_nm` and `translation_nm` put it on the crop's physical box.
    """

    name: str
    path: str = Field(description="the label's group, relative to the storage root")
    source_url: str
    source_level: str = Field(description="the source level copied (mip or dataset path)")
    source_version: str
    voxel_size_nm: list[float] = Field(min_length=3, max_length=3, description="x, y, z")
    translation_nm: list[float] = Field(min_length=3, max_length=3, description="x, y, z")
    dtype: str
    shape: list[int] = Field(min_length=3, max_length=3, description="z, y, x")
    offset_voxels: list[int] = Field(
        min_length=3, max_length=3, description="x, y, z, in voxels of the source level"
    )
    treatment: Literal["copied", "native_resolution"]
    description: str = Field(description="what was done, in words")
    nonzero_fraction: float = Field(ge=0, le=1)
    outside_value: int = Field(
        description="value of voxels outside the source's extent (fill value, or 'unknown')"
    )
    unknown_value: int | None = Field(
        default=None, description="the source's 'unknown' (not annotated) value, if it has one"
    )
    unknown_fraction: float | None = Field(default=None, ge=0, le=1)


class ImageEntry(BaseModel):
    """One OME-Zarr image (NGFF 0.4 multiscales, zarr v2) of the dataset, for loaders and
    viewers: `path` is relative to the storage root, its labels are under `{path}/labels/`."""

    name: str
    path: str
    shape_zyx: list[int] = Field(min_length=3, max_length=3)
    voxel_size_nm: list[float] = Field(min_length=3, max_length=3, description="x, y, z")
    labels: list[str] = Field(default_factory=list)


class SourceDocument(BaseModel):
    """The metadata document a source version was read from, as its reader parsed it.

    Recorded when the parse is exactly the document's JSON, so a later run that fetches
    byte-identical bytes (same sha256) knows the parse without starting the reader (for a
    precomputed `info`, cloud-volume, about 2 s to import). Any other bytes are read by
    the reader again.
    """

    url: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    parsed: dict[str, Any]


class Manifest(BaseModel):
    dataset: str
    title: str
    technique: str
    organism: str
    sample: str
    voxel_size_nm: list[float] = Field(min_length=3, max_length=3, description="x, y, z")
    voxel_size_source: str
    isotropic: bool
    axes: list[str]
    shape: list[int]
    dtype: str
    file_count: int = Field(ge=0)
    total_bytes: int = Field(ge=0)
    files: list[FileEntry]
    source_urls: list[str]
    license: str
    citation: str
    retrieved_at: datetime
    source_version: str
    doi: str | None = None
    provenance: dict[str, str] = Field(
        default_factory=dict, description="field name -> where its value came from"
    )
    crop: CropInfo | None = None
    array_path: str | None = None
    run_config: dict[str, Any] = Field(
        default_factory=dict, description="the asset's run config that produced this copy"
    )
    checked_at: datetime | None = Field(
        default=None, description="when the source was last compared with this copy"
    )
    labels: list[LabelInfo] = Field(
        default_factory=list, description="label images stored with the crop, aligned to it"
    )
    images: list[ImageEntry] = Field(
        default_factory=list, description="the dataset as OME-Zarr images (see em_assets.images)"
    )
    neuroglancer_url: str | None = Field(
        default=None, description="a crop: its source volume in Neuroglancer, the crop boxed"
    )
    source_document: SourceDocument | None = Field(
        default=None, description="the source's metadata document, by digest (not versioned)"
    )

    def content_version(self) -> str:
        """What the stored data is, independent of when it was fetched: Dagster's data version.

        Equal for byte-identical files (or voxel-identical crops) with the same geometry, so
        an unchanged refresh keeps the data version and downstream assets stay fresh.
        """
        return version_digest(
            {
                "files": [[f.path, f.kind, f.sha256] for f in self.files],
                "voxel_size_nm": self.voxel_size_nm,
                "crop": self.crop.model_dump(include={"offset_voxels", "size_voxels", "scale"})
                if self.crop
                else None,
            }
        )

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if any(v <= 0 for v in self.voxel_size_nm):
            raise ValueError(f"voxel sizes must be positive, got {self.voxel_size_nm}")
        if self.isotropic != is_isotropic(self.voxel_size_nm):
            raise ValueError(f"isotropic={self.isotropic} contradicts {self.voxel_size_nm}")
        if self.file_count != len(self.files):
            raise ValueError(f"file_count {self.file_count} but {len(self.files)} files listed")
        if self.total_bytes != sum(f.bytes for f in self.files):
            raise ValueError("total_bytes is not the sum of the files' bytes")
        if len(self.axes) != len(self.shape):
            raise ValueError(f"axes {self.axes} do not match shape {self.shape}")
        return self


@dataclass(frozen=True)
class DatasetFacts:
    """What a dataset's publishers document about it: shown before any run, checked after."""

    title: str
    technique: str
    organism: str
    sample: str
    license: str
    citation: str
    homepage: str
    documented_voxel_size_nm: tuple[float, float, float]
    documented_voxel_size_source: str
    doi: str | None = None


def build_manifest(
    *,
    files: list[FileEntry],
    voxel_size_nm: list[float],
    **fields: Any,
) -> Manifest:
    """A manifest whose derived fields (counts, sizes, isotropy) are computed, not typed in."""
    voxel = [float(v) for v in voxel_size_nm]
    return Manifest(
        files=files,
        voxel_size_nm=voxel,
        isotropic=is_isotropic(voxel),
        file_count=len(files),
        total_bytes=sum(f.bytes for f in files),
        **fields,
    )
