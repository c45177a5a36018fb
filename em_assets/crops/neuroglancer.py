"""A Neuroglancer link per crop: the whole source volume, centred on the crop, boxed.

The link opens the public viewer with its state in the URL fragment (`#!` + URL-encoded
JSON), the form Neuroglancer's own Python package writes. State format (Neuroglancer's
documentation and `neuroglancer/python/neuroglancer/viewer_state.py`): `dimensions` maps
each global axis to `[scale, unit]`; `position` is in those units; an annotation layer
with source `local://annotations` holds `axis_aligned_bounding_box` annotations given by
`pointA` and `pointB`.

The global axes are the crop level's voxels (x, y, z), so the box is exactly
`offset_voxels` to `offset_voxels + size_voxels`. A precomputed volume puts voxel v at
`v × resolution`; an OME-Zarr level at `translation + v × scale`, so for a translated
level the annotation layer's transform shifts the box by `translation / scale` to sit on
the same voxels.

The source is the configured URL (a mirror shows the mirror). `s3://bucket/key` is turned
into its https form (path-style under `AWS_ENDPOINT_URL` when set, else
`https://bucket.s3.amazonaws.com/key`): every Neuroglancer deployment reads https, while
s3:// support depends on its version. gs:// and http(s) are passed as they are.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote, urlsplit

from em_assets.crops.geometry import Vec

VIEWER = "https://neuroglancer-demo.appspot.com/"
BOX_LAYER = "crop"
# The characters Neuroglancer's Python package leaves unescaped in a state URL.
_SAFE = "~@#$&()*!+=:;,?/'"


def https_form(url: str) -> str:
    """An s3:// URL as https (see module docstring); anything else unchanged."""
    parts = urlsplit(url)
    if parts.scheme not in ("s3", "s3a"):
        return url
    key = parts.path.lstrip("/")
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        return f"{endpoint.rstrip('/')}/{parts.netloc}/{key}"
    return f"https://{parts.netloc}.s3.amazonaws.com/{key}"


def layer_source(protocol: str, url: str) -> str:
    """`{protocol}://` + the volume's URL in a form Neuroglancer reads."""
    return f"{protocol}://{https_form(url.removeprefix(f'{protocol}://'))}"


def crop_state(
    source: str,
    layer_name: str,
    voxel_size_nm: tuple[float, float, float],
    level_translation_nm: tuple[float, float, float],
    offset: Vec,
    size: Vec,
) -> dict[str, Any]:
    """Neuroglancer state: the source volume and a box around the crop, x, y, z voxels."""
    dimensions = {axis: [v * 1e-9, "m"] for axis, v in zip("xyz", voxel_size_nm, strict=True)}
    shift = [t / v for t, v in zip(level_translation_nm, voxel_size_nm, strict=True)]
    annotations: dict[str, Any] = {"url": "local://annotations"}
    if any(shift):
        annotations["transform"] = {
            "outputDimensions": dimensions,
            "matrix": [[float(i == row) for i in range(3)] + [shift[row]] for row in range(3)],
        }
    return {
        "dimensions": dimensions,
        "position": [shift[i] + offset[i] + size[i] / 2 for i in range(3)],
        "crossSectionScale": max(1.0, max(size) / 512),
        "projectionScale": 4.0 * max(size),
        "layers": [
            {"type": "image", "name": layer_name, "source": source},
            {
                "type": "annotation",
                "name": BOX_LAYER,
                "source": annotations,
                "annotations": [
                    {
                        "type": "axis_aligned_bounding_box",
                        "id": "crop",
                        "pointA": [float(v) for v in offset],
                        "pointB": [float(offset[i] + size[i]) for i in range(3)],
                        "description": "the stored crop",
                    }
                ],
            },
        ],
        "selectedLayer": {"layer": BOX_LAYER},
        "layout": "4panel",
    }


def link(state: dict[str, Any]) -> str:
    text = json.dumps(state, separators=(",", ":"))
    return f"{VIEWER}#!{quote(text, safe=_SAFE)}"
