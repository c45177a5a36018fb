"""The registry: every dataset module's `SPEC`, found by listing this package.

A module of `em_assets.datasets` that defines `SPEC` (a `DatasetSpec`) is a dataset; the
rest of the project iterates `DATASETS` and names none. Adding a dataset is adding its
module; definitions built from another list of specs (a test's extra dataset, a trimmed
deployment) go through `em_assets.definitions.build_definitions(specs)`.
"""

from __future__ import annotations

import importlib
import pkgutil

import em_assets.datasets as package
from em_assets.datasets.spec import DatasetSpec


def discover() -> tuple[DatasetSpec, ...]:
    """Every `SPEC` in this package, in module-name order (a stable order for the UI, the
    report's inputs and the logs)."""
    specs = []
    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        spec = getattr(importlib.import_module(f"{package.__name__}.{module.name}"), "SPEC", None)
        if isinstance(spec, DatasetSpec):
            specs.append(spec)
    return tuple(specs)


DATASETS = discover()


def names(specs: tuple[DatasetSpec, ...] = DATASETS) -> tuple[str, ...]:
    return tuple(spec.name for spec in specs)
