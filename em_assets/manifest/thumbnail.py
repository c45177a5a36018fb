"""A small PNG of a dataset's central slice, shown in the UI with its materialization.

Dagster has no image metadata kind; a PNG shows as base64 inside markdown. It is kept to a
few kilobytes, since very large metadata makes the UI slow.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from dagster import AssetKey, DagsterInstance, MetadataValue
from PIL import Image

EDGE = 160


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Grey levels for display: uint8 as is, anything else stretched over its 1-99th percentile."""
    if image.dtype == np.uint8:
        return image
    low, high = np.percentile(image, [1, 99])
    scaled = (image.astype(np.float64) - low) / max(high - low, 1e-12)
    return (np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def thumbnail_png(image: np.ndarray, edge: int = EDGE) -> bytes:
    """A PNG of a 2-D image, its longer side at most `edge` pixels."""
    step = max(1, max(image.shape) // (2 * edge))  # cheap decimation first, then a smooth resize
    picture = Image.fromarray(to_uint8(np.ascontiguousarray(image[::step, ::step])))
    picture.thumbnail((edge, edge))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def thumbnail_metadata(image: np.ndarray, caption: str) -> MetadataValue:
    encoded = base64.b64encode(thumbnail_png(image)).decode()
    return MetadataValue.md(f"![{caption}](data:image/png;base64,{encoded})\n\n{caption}")


DATA_VERSION_TAG = "dagster/data_version"


def recorded_thumbnail(
    instance: DagsterInstance, asset_key: AssetKey, content_version: str
) -> MetadataValue | None:
    """The thumbnail of the asset's last materialization, if that showed the same content
    (same data version): an unchanged refresh then reads no voxel to draw it again."""
    record = instance.get_latest_materialization_event(asset_key)
    materialized = record.asset_materialization if record is not None else None
    if materialized is None or (materialized.tags or {}).get(DATA_VERSION_TAG) != content_version:
        return None
    earlier = materialized.metadata.get("thumbnail")
    return earlier if isinstance(earlier, MetadataValue) else None
