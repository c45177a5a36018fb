"""The outside services, one resource each, addressed by environment variables.

Defaults are the real public endpoints; tests and mirrors override them with the variables
listed in `settings`. Each resource validates its value when a run starts, and the error
names the variable.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from dagster import ConfigurableResource
from pydantic import Field

from em_assets.settings import (
    EBI_FILES_URL,
    EMPIAR_API_URL,
    EPFL_URL,
    HEMIBRAIN_MITO_URL,
    HEMIBRAIN_SEGMENTATION_URL,
    HEMIBRAIN_URL,
    IDR_URL,
    OPENORGANELLE_URL,
    ConfigurationError,
    require_http_url,
)


class EpflServer(ConfigurableResource):
    """The EPFL CVLab web server holding the hippocampus TIFFs."""

    base_url: str = Field(default=EPFL_URL.default, description=EPFL_URL.help)

    def setup_for_execution(self, context) -> None:
        self.file_url("training.tif")

    def file_url(self, name: str) -> str:
        return f"{require_http_url(self.base_url, EPFL_URL.name)}/{quote(name)}"


class HemibrainVolume(ConfigurableResource):
    """The FlyEM hemibrain EM layer, and the label layers published beside it, as
    cloud-volume paths."""

    cloudpath: str = Field(default=HEMIBRAIN_URL.default, description=HEMIBRAIN_URL.help)
    segmentation_cloudpath: str = Field(
        default=HEMIBRAIN_SEGMENTATION_URL.default, description=HEMIBRAIN_SEGMENTATION_URL.help
    )
    mito_cloudpath: str = Field(
        default=HEMIBRAIN_MITO_URL.default, description=HEMIBRAIN_MITO_URL.help
    )

    def setup_for_execution(self, context) -> None:
        self.validated_cloudpath()

    def validated_cloudpath(self) -> str:
        """A `precomputed://` path cloud-volume can open: over http(s), gs:// or s3://."""
        return precomputed_cloudpath(self.cloudpath, HEMIBRAIN_URL.name)

    def label_cloudpath(self, layer: str) -> tuple[str, str]:
        """The validated path of a label layer (`segmentation` or `mito`) and its variable."""
        setting, value = {
            "segmentation": (HEMIBRAIN_SEGMENTATION_URL, self.segmentation_cloudpath),
            "mito": (HEMIBRAIN_MITO_URL, self.mito_cloudpath),
        }[layer]
        return precomputed_cloudpath(value, setting.name), setting.name


def precomputed_cloudpath(value: str, variable: str) -> str:
    """`value` as a `precomputed://` path over http(s), gs:// or s3://; errors name `variable`."""
    path = value.strip().rstrip("/")
    inner = urlsplit(path.removeprefix("precomputed://"))
    if inner.scheme in ("http", "https"):
        require_http_url(inner.geturl(), variable)
    elif inner.scheme not in ("gs", "s3") or not inner.netloc:
        raise ConfigurationError(
            f"{variable}={value!r} is not a cloud-volume path; use "
            "precomputed://https://HOST/PATH, gs://BUCKET/PATH or s3://BUCKET/PATH."
        )
    return path if path.startswith("precomputed://") else f"precomputed://{path}"


class EmpiarApi(ConfigurableResource):
    """EMPIAR's REST API (entry metadata)."""

    base_url: str = Field(default=EMPIAR_API_URL.default, description=EMPIAR_API_URL.help)

    def setup_for_execution(self, context) -> None:
        self.entry_url("EMPIAR-11759")

    def entry_url(self, accession: str) -> str:
        return f"{require_http_url(self.base_url, EMPIAR_API_URL.name)}/entry/{accession}/"


class EbiFiles(ConfigurableResource):
    """EBI's file server: EMPIAR data directories and IDR submissions."""

    base_url: str = Field(default=EBI_FILES_URL.default, description=EBI_FILES_URL.help)

    def setup_for_execution(self, context) -> None:
        self.url("")

    def url(self, path: str) -> str:
        return f"{require_http_url(self.base_url, EBI_FILES_URL.name)}/{path.lstrip('/')}"


def ebi_files() -> EbiFiles:
    """The one EBI file server resource (key "ebi") that EMPIAR and IDR both declare: one
    factory, so the two specs cannot disagree about the service they share."""
    return EbiFiles(base_url=EBI_FILES_URL.source())


class IdrApi(ConfigurableResource):
    """The IDR web client's JSON endpoints (image metadata)."""

    base_url: str = Field(default=IDR_URL.default, description=IDR_URL.help)

    def setup_for_execution(self, context) -> None:
        self.image_data_url(0)

    def image_data_url(self, image_id: int) -> str:
        return f"{require_http_url(self.base_url, IDR_URL.name)}/webclient/imgData/{image_id}/"


class OpenOrganelleStore(ConfigurableResource):
    """The jrc_mus-liver OME-Zarr group on public S3 (anonymous reads)."""

    url: str = Field(default=OPENORGANELLE_URL.default, description=OPENORGANELLE_URL.help)

    def setup_for_execution(self, context) -> None:
        self.validated_url()

    def validated_url(self) -> str:
        parts = urlsplit(self.url.strip())
        if parts.scheme not in ("s3", "http", "https") or not parts.netloc:
            raise ConfigurationError(
                f"{OPENORGANELLE_URL.name}={self.url!r} is not an s3:// or http(s):// URL of a "
                "zarr group; use s3://BUCKET/path/to/group.zarr."
            )
        return self.url.strip().rstrip("/")
