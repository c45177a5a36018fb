"""Keeping the cyclic garbage collector off the objects a process loads to do its work.

Every full collection walks every tracked object while holding the GIL. Once Dagster, the
libraries and the definitions are loaded that is about 150,000 objects, and about 90,000
more once a step has imported cloud-volume, tensorstore, zarr and s3fs. Allocation during
a run triggers full collections regardless: an unchanged whole-graph re-run made six
(about 1.0 s of its 11 s, measured with `gc.callbacks`), a 1000³ crop copy three (0.8 s,
stalling its reader threads). Those loaded objects live as long as the process, so they
are moved out of the collector's reach with `gc.freeze()`: collections then walk only what
the run itself made. Reference counting still frees a frozen object that is no longer
used; only a cycle among frozen objects would wait for the process to end.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


def freeze_loaded_code() -> None:
    """Freeze every object loaded so far, for the life of the process.

    Called once the definitions are built (both variants: `em_assets.definitions` and
    `em_assets.scale_out.definitions`): a run's process, a code server and a test session
    keep them, and the modules behind them, until they exit."""
    gc.freeze()


@contextmanager
def loaded_objects_out_of_gc() -> Iterator[None]:
    """Freeze what exists before a crop copy, for the copy's duration.

    A copy allocates steadily (futures, arrays, digests) on top of the libraries its step
    imported. In a process that never froze its loaded code (a script using the library)
    everything frozen here is handed back to the collector after the copy, failed or not,
    so nothing made before it waits for the process to end. A process that did freeze its
    loaded code keeps this freeze too: `gc.unfreeze` would thaw the definitions with it.
    What the step held then (its context, resources, source) is still freed by reference
    counts when the step ends; only what of it sits in a reference cycle waits for the
    process, which for a run's steps ends with the run."""
    thaw_after = gc.get_freeze_count() == 0
    gc.freeze()
    try:
        yield
    finally:
        if thaw_after:
            gc.unfreeze()
