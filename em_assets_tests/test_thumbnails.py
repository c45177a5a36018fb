"""Thumbnails: each dataset's materialization shows a small PNG of its central slice."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import tifffile
from dagster import DagsterInstance, materialize
from PIL import Image

from em_assets.definitions import ASSETS
from em_assets.manifest.thumbnail import EDGE, thumbnail_png
from em_assets.resources import default_resources
from em_assets_tests.conftest import SMALL_CROPS

DATASETS = ["epfl_hippocampus", "flyem_hemibrain", "empiar_11759", "idr_0086", "openorganelle_jrc"]


def decode(markdown: str) -> Image.Image:
    encoded = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", markdown).group(1)
    return Image.open(io.BytesIO(base64.b64decode(encoded)))


def test_thumbnail_is_small_and_shows_the_image():
    image = np.zeros((600, 900), dtype=np.uint8)
    image[:, 450:] = 200
    picture = Image.open(io.BytesIO(thumbnail_png(image)))
    assert max(picture.size) == EDGE and picture.size[0] > picture.size[1]
    pixels = np.asarray(picture)
    assert pixels[:, : EDGE // 3].mean() < 5 and pixels[:, -EDGE // 3 :].mean() > 195


def test_thumbnail_stretches_non_uint8_images():
    image = np.linspace(1000, 5000, 100 * 100).reshape(100, 100).astype(np.uint16)
    pixels = np.asarray(Image.open(io.BytesIO(thumbnail_png(image))))
    assert pixels.min() <= 5 and pixels.max() >= 250


def test_every_dataset_materialization_carries_its_central_slice(all_sources):
    result = materialize(
        ASSETS[:-1], resources=default_resources(), instance=DagsterInstance.ephemeral(),
        run_config=SMALL_CROPS,
    )  # fmt: skip
    for name in DATASETS:
        metadata = result.asset_materializations_for_node(name)[0].metadata
        picture = decode(metadata["thumbnail"].value)
        assert picture.format == "PNG" and max(picture.size) <= EDGE
    shown = decode(
        result.asset_materializations_for_node("epfl_hippocampus")[0].metadata["thumbnail"].value
    )
    stack = tifffile.imread(all_sources["root"] / "epfl_hippocampus" / "training.tif")
    central = Image.open(io.BytesIO(thumbnail_png(stack[len(stack) // 2])))
    first = Image.open(io.BytesIO(thumbnail_png(stack[0])))
    assert np.array_equal(np.asarray(shown), np.asarray(central))
    assert not np.array_equal(np.asarray(shown), np.asarray(first))
