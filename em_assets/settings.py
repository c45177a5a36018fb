"""The environment variables that point the project at its sources and its storage.

Their names are a public interface: mirrors, tests and deployment tooling drive the project
through them, so they live in one place and every resource takes its default from here.
Values are validated where they are used, and every error names the variable, so that a
typo in a deployment is reported as such rather than as a confusing network failure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:  # Dagster only when a resource is built: the transfer library imports this
    from dagster import EnvVar


class ConfigurationError(ValueError):
    """A setting (environment variable or run config) has a value the project cannot use."""


@dataclass(frozen=True)
class EnvSetting:
    """An environment variable with the public default used when it is unset."""

    name: str
    default: str
    help: str

    def source(self) -> str | EnvVar:
        """The value to give a resource field: the variable itself when set, else the default.

        Passing `EnvVar` (not its value) keeps the setting out of Dagster's stored run config
        and shows it as coming from the environment in the UI.
        """
        from dagster import EnvVar

        return EnvVar(self.name) if self.name in os.environ else self.default

    def int_source(self) -> int | EnvVar:
        """`source` for an integer field: the variable, parsed by Dagster, or the default."""
        from dagster import EnvVar

        return EnvVar.int(self.name) if self.name in os.environ else int(self.default)

    def value(self) -> str:
        """The setting now, for what Dagster needs at definition time (a schedule's cron)."""
        return os.environ.get(self.name, self.default)


ASSETS_ROOT = EnvSetting(
    "EM_ASSETS_ROOT",
    "./em_data",
    "storage root: a local path or any fsspec URL (file://, s3://, gs://, memory://)",
)
EPFL_URL = EnvSetting(
    "EM_EPFL_URL",
    "https://documents.epfl.ch/groups/c/cv/cvlab-unit/www/data/%20ElectronMicroscopy_Hippocampus/",
    "directory holding the EPFL hippocampus TIFFs",
)
HEMIBRAIN_URL = EnvSetting(
    "EM_HEMIBRAIN_URL",
    "precomputed://https://storage.googleapis.com/neuroglancer-janelia-flyem-hemibrain/emdata/clahe_yz/jpeg",
    "cloud-volume path of the FlyEM hemibrain EM layer",
)
HEMIBRAIN_SEGMENTATION_URL = EnvSetting(
    "EM_HEMIBRAIN_SEGMENTATION_URL",
    "precomputed://https://storage.googleapis.com/neuroglancer-janelia-flyem-hemibrain/v1.2/segmentation",
    "cloud-volume path of the hemibrain neuron segmentation (uint64 body ids, labels run config)",
)
HEMIBRAIN_MITO_URL = EnvSetting(
    "EM_HEMIBRAIN_MITO_URL",
    "precomputed://https://storage.googleapis.com/neuroglancer-janelia-flyem-hemibrain/v1.2/mito-objects-grouped",
    "cloud-volume path of the hemibrain mitochondria segmentation (labels run config 'mito')",
)
EMPIAR_API_URL = EnvSetting(
    "EM_EMPIAR_API_URL",
    "https://www.ebi.ac.uk/empiar/api",
    "EMPIAR REST API base (entry at {base}/entry/EMPIAR-11759/)",
)
EBI_FILES_URL = EnvSetting(
    "EM_EBI_FILES_URL",
    "https://ftp.ebi.ac.uk",
    "EBI file server (EMPIAR data and IDR files)",
)
IDR_URL = EnvSetting(
    "EM_IDR_URL",
    "https://idr.openmicroscopy.org",
    "IDR web client base (pixel size at {base}/webclient/imgData/9846137/)",
)
OPENORGANELLE_URL = EnvSetting(
    "EM_OPENORGANELLE_URL",
    "s3://janelia-cosem-datasets/jrc_mus-liver/jrc_mus-liver.zarr",
    "OME-Zarr group of jrc_mus-liver (read anonymously; AWS_ENDPOINT_URL is honoured)",
)

REFRESH_CRON = EnvSetting(
    "EM_REFRESH_CRON",
    "0 4 * * 1",
    "cron schedule of the full refresh (default: Mondays 04:00 UTC)",
)

CROP_PARTITIONS = EnvSetting(
    "EM_CROP_PARTITIONS",
    "8",
    "partitions per crop in the scale-out definitions (em_assets.scale_out)",
)

LEASE_WAIT = EnvSetting(
    "EM_LEASE_WAIT_S",
    "600",
    "seconds a run waits for another run writing the same asset on the same root",
)

ALL_SETTINGS = (
    ASSETS_ROOT,
    EPFL_URL,
    HEMIBRAIN_URL,
    HEMIBRAIN_SEGMENTATION_URL,
    HEMIBRAIN_MITO_URL,
    EMPIAR_API_URL,
    EBI_FILES_URL,
    IDR_URL,
    OPENORGANELLE_URL,
    REFRESH_CRON,
    CROP_PARTITIONS,
    LEASE_WAIT,
)


def require_http_url(value: str, variable: str) -> str:
    """Return `value` without a trailing slash if it is an absolute http(s) URL."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"{variable}={value!r} is not an absolute http(s) URL; "
            f"set {variable} to something like 'https://host/path', "
            "or unset it to use the public default."
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(
            f"{variable}={value!r} carries a query or fragment; give the bare base URL."
        )
    return value.strip().rstrip("/")


ASSET_GROUP = "em_datasets"
"""The one group holding the datasets and the report, so the UI shows them together."""

# Dagster pools, one per source host: an instance limit on a pool caps how many steps (and
# so transfers) run against that host at once, across runs. EBI serves EMPIAR and IDR.
EPFL_POOL = "host_epfl"
GCS_POOL = "host_gcs_public"
EBI_POOL = "host_ebi"
S3_JANELIA_POOL = "host_s3_janelia"
