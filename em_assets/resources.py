"""The resources every asset is wired to, fed by the project's environment variables: the
shared ones here, each dataset's outside services from its spec."""

from collections.abc import Sequence
from typing import Any

from em_assets.crops.resource import CropCopy
from em_assets.datasets.registry import DATASETS
from em_assets.datasets.spec import DatasetSpec
from em_assets.report.asset import REPORT_INPUTS
from em_assets.settings import ASSETS_ROOT, LEASE_WAIT
from em_assets.storage.io_manager import JsonIOManagerFactory
from em_assets.storage.root import StorageRoot
from em_assets.transfer.resource import HttpTransfer

SHARED_KEYS = ("io_manager", REPORT_INPUTS, "storage", "http", "crop_copy")


def default_resources(datasets: Sequence[DatasetSpec] = DATASETS) -> dict[str, Any]:
    """Resources reading `EM_*` variables (see `settings`), defaulting to the public sources.
    Datasets reading the same service declare the same key; it is built once."""
    storage = StorageRoot(
        root=ASSETS_ROOT.source(),
        lease_wait_s=LEASE_WAIT.int_source(),  # type: ignore[arg-type]  # an EnvVar, resolved by Dagster
    )
    resources: dict[str, Any] = {
        "io_manager": JsonIOManagerFactory(storage=storage),
        REPORT_INPUTS: JsonIOManagerFactory(storage=storage, missing_ok=True),
        "storage": storage,
        "http": HttpTransfer(),
        "crop_copy": CropCopy(),
    }
    for spec in datasets:
        for key, build in spec.resources.items():
            if key in SHARED_KEYS:
                raise ValueError(f"{spec.name} declares the shared resource key {key!r}")
            if key not in resources:
                resources[key] = build()
    return resources
