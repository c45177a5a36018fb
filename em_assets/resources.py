"""The resources every asset is wired to, fed by the project's environment variables."""

from typing import Any

from em_assets.crops.resource import CropCopy
from em_assets.report.asset import REPORT_INPUTS
from em_assets.settings import (
    ASSETS_ROOT,
    EBI_FILES_URL,
    EMPIAR_API_URL,
    EPFL_URL,
    HEMIBRAIN_MITO_URL,
    HEMIBRAIN_SEGMENTATION_URL,
    HEMIBRAIN_URL,
    IDR_URL,
    LEASE_WAIT,
    OPENORGANELLE_URL,
)
from em_assets.sources import (
    EbiFiles,
    EmpiarApi,
    EpflServer,
    HemibrainVolume,
    IdrApi,
    OpenOrganelleStore,
)
from em_assets.storage.io_manager import JsonIOManagerFactory
from em_assets.storage.root import StorageRoot
from em_assets.transfer.resource import HttpTransfer


def default_resources() -> dict[str, Any]:
    """Resources reading `EM_*` variables (see `settings`), defaulting to the public sources."""
    storage = StorageRoot(root=ASSETS_ROOT.source(), lease_wait_s=LEASE_WAIT.int_source())
    return {
        "io_manager": JsonIOManagerFactory(storage=storage),
        REPORT_INPUTS: JsonIOManagerFactory(storage=storage, missing_ok=True),
        "storage": storage,
        "http": HttpTransfer(),
        "crop_copy": CropCopy(),
        "epfl": EpflServer(base_url=EPFL_URL.source()),
        "hemibrain": HemibrainVolume(
            cloudpath=HEMIBRAIN_URL.source(),
            segmentation_cloudpath=HEMIBRAIN_SEGMENTATION_URL.source(),
            mito_cloudpath=HEMIBRAIN_MITO_URL.source(),
        ),
        "openorganelle": OpenOrganelleStore(url=OPENORGANELLE_URL.source()),
        "empiar": EmpiarApi(base_url=EMPIAR_API_URL.source()),
        "ebi": EbiFiles(base_url=EBI_FILES_URL.source()),
        "idr": IdrApi(base_url=IDR_URL.source()),
    }
