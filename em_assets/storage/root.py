"""The storage root (`EM_ASSETS_ROOT`) and the only ways to derive paths under it.

Everything the project writes lands under one fsspec root. Names that come from outside
(listing entries, run config) are joined through `child_path`, which refuses anything that
could escape the directory it is joined to.
"""

from __future__ import annotations

import json
import os
import re
from urllib.parse import urlsplit

from dagster import ConfigurableResource
from fsspec.registry import known_implementations
from pydantic import Field, ValidationError
from upath import UPath

from em_assets.manifest.model import Manifest
from em_assets.settings import ASSETS_ROOT, ConfigurationError

_LOOKS_LIKE_URL_WITHOUT_SLASHES = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:(?!//)")
_READ_ONLY_PROTOCOLS = {"http", "https", "ftp", "github", "zip", "tar"}
_BUCKET_PROTOCOLS = {"s3", "s3a", "gs", "gcs", "az", "abfs"}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ +-]*$")


def parse_root(value: str, variable: str = ASSETS_ROOT.name) -> UPath:
    """Turn a root setting into a UPath, or explain what is wrong with it."""
    text = value.strip()
    if not text:
        raise ConfigurationError(f"{variable} is empty; set it to a local path or an fsspec URL.")
    if "://" not in text:
        if _LOOKS_LIKE_URL_WITHOUT_SLASHES.match(text) and not re.match(r"^[A-Za-z]:[\\/]", text):
            scheme = text.split(":", 1)[0]
            raise ConfigurationError(
                f"{variable}={value!r} looks like a URL without '//' after {scheme!r}; "
                f"write {scheme}://BUCKET/prefix, or ./{text} for a local folder."
            )
        return UPath(os.path.abspath(text))
    parts = urlsplit(text)
    protocol = parts.scheme
    if protocol in _READ_ONLY_PROTOCOLS:
        raise ConfigurationError(
            f"{variable}={value!r} uses {protocol}://, which is read-only; "
            "use a local path, file://, s3://, gs:// or memory://."
        )
    if protocol not in known_implementations:
        raise ConfigurationError(
            f"{variable}={value!r} has an unknown protocol {protocol!r}; "
            "use a local path, file://, s3://, gs:// or memory://."
        )
    if protocol in _BUCKET_PROTOCOLS and not parts.hostname:
        raise ConfigurationError(
            f"{variable}={value!r} names no bucket; use {protocol}://BUCKET/optional/prefix."
        )
    if parts.username or parts.password:
        raise ConfigurationError(
            f"{variable} must not carry credentials; use the standard credential variables "
            f"of the {protocol} filesystem instead."
        )
    try:
        return UPath(text.rstrip("/"))
    except (ImportError, ValueError) as error:
        raise ConfigurationError(f"{variable}={value!r} cannot be opened: {error}") from error


def child_path_name_problem(name: str) -> str | None:
    """Why `name` is not a plain file name (no separators, no `..`, no scheme), or None."""
    if not _SAFE_NAME.match(name) or ".." in name:
        return f"{name!r} is not a plain file name (letters, digits, '._ +-' only)"
    return None


def child_path(directory: UPath, name: str) -> UPath:
    """Join a single file name taken from outside input onto `directory`.

    A listing entry or a config value must never decide where a file is written.
    """
    problem = child_path_name_problem(name)
    if problem:
        raise ConfigurationError(
            f"refusing file name {problem}; nothing is written under {directory}."
        )
    return directory / name


class StorageRoot(ConfigurableResource):
    """The fsspec root under which every asset's files and manifests are stored."""

    root: str = Field(
        default=ASSETS_ROOT.default,
        description=f"{ASSETS_ROOT.help}. Set by {ASSETS_ROOT.name}.",
    )

    def setup_for_execution(self, context) -> None:
        # Fail at resource initialisation, before any asset transfers a byte.
        self.base()

    def base(self) -> UPath:
        return parse_root(self.root)

    def dataset_dir(self, asset_name: str) -> UPath:
        """`{root}/{asset_name}/`, where an asset's files and arrays go."""
        return child_path(self.base(), asset_name)

    def manifest_path(self, asset_name: str) -> UPath:
        """`{root}/{asset_name}.json`, the IO manager's copy of the asset's manifest."""
        return child_path(self.base(), f"{asset_name}.json")

    def stored_manifest(self, asset_name: str) -> Manifest | None:
        """The manifest of this asset's last materialization here, or None if there is no
        usable one (never materialized, or unreadable: then everything is fetched again)."""
        path = self.manifest_path(asset_name)
        if not path.exists():
            return None
        try:
            return Manifest.model_validate(json.loads(path.read_text()))
        except (ValueError, ValidationError):
            return None
