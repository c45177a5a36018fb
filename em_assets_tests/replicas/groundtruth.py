"""CellMap ground-truth crops beside the jrc_mus-liver EM replica, in the published layout.

`recon-1/labels/groundtruth/crop<N>/<class>/s<k>`, zarr v2, with the attributes documented
by cellmap-schemas (`annotation.py`: crop group `class_names`, class group and array
`annotation_type.encoding` with `unknown: 255`, arrays' `complement_counts`) and NGFF 0.4
multiscales. s0 is twice as fine as the EM; its centred 2x downsampling s1 falls on the EM
grid, as CellMap's pyramids do (translation of level k = t0 + (2**k - 1) * s0 / 2).

- crop124: classes `mito` and `all`, levels s0 (half the EM voxel) and s1 (the EM's).
- crop1038: class `mito`, s0 only: no level at the EM's voxel size.

Both hold "unknown" (255) voxels inside the annotated box, as real crops do at their edges.
The ground-truth group has zarr v2 consolidated metadata, the crops' names included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numcodecs
import numpy as np
import zarr

from em_assets_tests.replicas.openorganelle import (
    BUCKET,
    CONTAINER,
    SCALE_ZYX,
    TRANSLATION_ZYX,
)
from em_assets_tests.replicas.s3 import S3Replica

GROUNDTRUTH = "recon-1/labels/groundtruth"
UNKNOWN = 255
CROPS = {
    # name: (first annotated EM voxel, EM voxels annotated; both z, y, x), classes, levels
    "crop124": ((70, 81, 90), (20, 24, 28), ("mito", "all"), 2),
    "crop1038": ((20, 30, 40), (10, 12, 14), ("mito",), 1),
}


@dataclass(frozen=True)
class GroundTruthLevel:
    data: np.ndarray  # z, y, x
    scale: tuple[float, float, float]  # z, y, x
    translation: tuple[float, float, float]  # z, y, x


def annotation_of(name: str, seed: int, shape: tuple[int, int, int]) -> np.ndarray:
    """0 absent, 1..n present, 255 unknown on the first z plane."""
    z, y, x = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    wave = np.sin(x / 3.0 + seed) * np.cos(y / 4.0) + np.sin(z / 5.0)
    data = (wave > 0.3).astype(np.uint8)
    if name == "all":
        data = data * (1 + (x // 6 + y // 6) % 4).astype(np.uint8)
    data[0] = UNKNOWN
    return data


def write_groundtruth(s3: S3Replica) -> dict[str, dict[str, list[GroundTruthLevel]]]:
    """Write the crops into the (already created) jrc_mus-liver container."""
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": s3.endpoint_url, "region_name": "us-east-1"},
    }
    url = f"s3://{BUCKET}/{CONTAINER}/{GROUNDTRUTH}"
    root = zarr.open_group(url, mode="a", zarr_format=2, storage_options=options)
    written: dict[str, dict[str, list[GroundTruthLevel]]] = {}
    fine = tuple(s / 2 for s in SCALE_ZYX)
    for seed, (crop, (first, extent, classes, level_count)) in enumerate(CROPS.items()):
        crop_group = root.require_group(crop)
        crop_group.attrs["cellmap"] = {
            "annotation": {
                "version": "0.1.1",
                "name": crop,
                "description": None,
                "created_by": [],
                "created_with": ["replica"],
                "start_date": None,
                "end_date": None,
                "duration_days": None,
                "protocol_uri": None,
                "class_names": list(classes),
            }
        }
        # Centres of the fine voxels: the EM voxel k is covered by fine voxels 2k and 2k+1.
        origin = tuple(
            TRANSLATION_ZYX[i] + first[i] * SCALE_ZYX[i] - SCALE_ZYX[i] / 4 for i in range(3)
        )
        written[crop] = {}
        for name in classes:
            annotation_type = {
                "type": "semantic_segmentation",
                "encoding": {"absent": 0, "present": 1, "unknown": UNKNOWN}
                if name != "all"
                else {"absent": 0, "unknown": UNKNOWN},
            }
            group = crop_group.require_group(name)
            data = annotation_of(name, seed, tuple(2 * n for n in extent))  # type: ignore[arg-type]  # 3 items, typed tuple[int, ...]
            levels, datasets = [], []
            for k in range(level_count):
                factor = 2**k
                scale = tuple(f * factor for f in fine)
                translation = tuple(origin[i] + (factor - 1) * fine[i] / 2 for i in range(3))
                array = group.create_array(
                    f"s{k}",
                    shape=data.shape,
                    chunks=(16, 16, 16),
                    dtype="uint8",
                    compressors=numcodecs.GZip(level=6),
                    fill_value=0,
                    chunk_key_encoding={"name": "v2", "separator": "/"},
                )
                array[:] = data
                array.attrs["cellmap"] = {
                    "annotation": {
                        "class_name": name,
                        "annotation_type": annotation_type,
                        "complement_counts": {
                            "absent": int(np.count_nonzero(data == 0)),
                            "unknown": int(np.count_nonzero(data == UNKNOWN)),
                        },
                    }
                }
                levels.append(GroundTruthLevel(data, scale, translation))  # type: ignore[arg-type]  # 3 items, typed tuple[int, ...]
                datasets.append(
                    {
                        "path": f"s{k}",
                        "coordinateTransformations": [
                            {"type": "scale", "scale": list(scale)},
                            {"type": "translation", "translation": list(translation)},
                        ],
                    }
                )
                data = data[::2, ::2, ::2]  # labels are downsampled by picking, never averaged
            group.attrs.update(
                {
                    "multiscales": [
                        {
                            "version": "0.4",
                            "name": name,
                            "axes": [
                                {"name": a, "type": "space", "unit": "nanometer"} for a in "zyx"
                            ],
                            "datasets": datasets,
                        }
                    ],
                    "cellmap": {
                        "annotation": {"class_name": name, "annotation_type": annotation_type}
                    },
                }
            )
            written[crop][name] = levels
    zarr.consolidate_metadata(root.store, zarr_format=2)
    return written
