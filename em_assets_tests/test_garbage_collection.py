"""The garbage collector kept off loaded objects (em_assets/garbage_collection.py).

Each case runs in a fresh interpreter: pytest's own has frozen whatever it held when a test
module first imported the definitions."""

from __future__ import annotations

import pytest

from em_assets_tests.helpers import in_a_fresh_process

COPY = """
import gc, json, logging
import numpy as np, zarr
from em_assets.crops.copy import copy_crop
from em_assets.crops.geometry import Box

data = np.zeros((64, 64, 64), dtype=np.uint8)
frozen_while_reading = []

def read(box):
    frozen_while_reading.append(gc.get_freeze_count())
    return data[box.zyx_slices()], 0

def failing(box):
    raise OSError("source gone")

def copy(reader):
    output = zarr.create_array(
        zarr.storage.MemoryStore(), shape=data.shape, chunks=(32, 32, 32), dtype="uint8"
    )
    copy_crop(reader, Box((0, 0, 0), (64,) * 3), (32,) * 3, (32,) * 3, output,
              logging.getLogger("t"), "t", 2)
"""


def test_a_copy_freezes_what_exists_before_it_and_hands_it_back_after():
    """In a process that never froze its loaded code, the copy's freeze is undone after
    it, even when it fails."""
    seen = in_a_fresh_process(
        COPY
        + """
before = gc.get_freeze_count()
copy(read)
after = gc.get_freeze_count()
try:
    copy(failing)
    failed = False
except OSError:
    failed = True
print(json.dumps({"success": failed, "before": before, "while": min(frozen_while_reading),
                  "after": after, "after_failure": gc.get_freeze_count()}))
"""
    )
    assert seen["before"] == 0
    assert seen["while"] > 10_000  # numpy, zarr and the project's modules at least
    assert seen["after"] == 0 and seen["after_failure"] == 0


@pytest.mark.parametrize(
    "definitions", ["em_assets.definitions", "em_assets.scale_out.definitions"]
)
def test_loading_the_definitions_freezes_them_for_good_and_a_copy_keeps_them_frozen(definitions):
    """Building the definitions freezes everything loaded; a later copy must not thaw it
    (gc.unfreeze thaws everything, so a copy that undid its own freeze would undo this)."""
    seen = in_a_fresh_process(
        COPY
        + f"""
import {definitions}
"""
        + """
loaded = gc.get_freeze_count()
copy(read)
print(json.dumps({"success": True, "loaded": loaded, "after_copy": gc.get_freeze_count()}))
"""
    )
    assert seen["loaded"] > 100_000  # Dagster, the libraries and the definitions
    assert seen["after_copy"] >= seen["loaded"]
