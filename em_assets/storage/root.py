"""The storage root (`EM_ASSETS_ROOT`) and the only ways to derive paths under it.

Everything the project writes lands under one fsspec root. Names that come from outside
(listing entries, run config) are joined through `child_path`, which refuses anything that
could escape the directory it is joined to.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from dagster import ConfigurableResource
from fsspec.registry import known_implementations
from pydantic import Field
from upath import UPath

from em_assets.logger import Logger
from em_assets.manifest.model import Manifest
from em_assets.settings import ASSETS_ROOT, LEASE_WAIT, ConfigurationError
from em_assets.storage.lease import open_lease, writing
from em_assets.storage.manifest_store import manifest_path, stored_manifest
from em_assets.storage.paths import child_path
from em_assets.storage.staging import OBJECT_STORES, is_local

_LOOKS_LIKE_URL_WITHOUT_SLASHES = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:(?!//)")
_READ_ONLY_PROTOCOLS = {"http", "https", "ftp", "github", "zip", "tar"}


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
    if protocol in OBJECT_STORES and not parts.hostname:
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


class EscapingPathError(ConfigurationError):
    """A link under the root leads outside it; nothing is written through it."""


def confined(root: UPath, path: UPath) -> UPath:
    """`path`, after checking that on a local root no link leads it outside the root.

    A root is often shared: a link planted at `{root}/{asset}` must not send the project's
    writes (or its clean-up) into someone else's directory.
    """
    if not is_local(root):
        return path
    real_root = os.path.realpath(root.path)
    real = os.path.realpath(path.path)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise EscapingPathError(
            f"{path.path} leads outside the storage root {root.path} (to {real}); remove that "
            "link, nothing is written through it"
        )
    return path


class StorageRoot(ConfigurableResource):
    """The fsspec root under which every asset's files and manifests are stored."""

    root: str = Field(
        default=ASSETS_ROOT.default,
        description=f"{ASSETS_ROOT.help}. Set by {ASSETS_ROOT.name}.",
    )
    lease_wait_s: int = Field(
        default=int(LEASE_WAIT.default),
        ge=0,
        description=f"{LEASE_WAIT.help}. Set by {LEASE_WAIT.name}.",
    )
    lease_ttl_s: int = Field(
        default=120,
        ge=10,
        description="object-store roots: a lease not renewed for this long belongs to a dead "
        "run and is taken over (renewed every quarter of it)",
    )

    def setup_for_execution(self, context) -> None:
        # Fail at resource initialisation, before any asset transfers a byte.
        self.base()

    def base(self) -> UPath:
        return parse_root(self.root)

    def dataset_dir(self, asset_name: str) -> UPath:
        """`{root}/{asset_name}/`, where an asset's files and arrays go (never via a link
        that leads outside the root)."""
        base = self.base()
        return confined(base, child_path(base, asset_name))

    @contextmanager
    def lease(self, asset_name: str, run_id: str, log: Logger) -> Iterator[None]:
        """Hold the one-writer lease of `asset_name` for the asset body; on success it stays
        held until the IO manager has stored the manifest (see `storage.lease`)."""
        lease = open_lease(
            self.base(), asset_name, run_id, self.lease_wait_s, self.lease_ttl_s, log
        )
        with writing(lease):
            yield

    def manifest_path(self, asset_name: str) -> UPath:
        """Where the IO manager keeps `asset_name`'s manifest (see `storage.manifest_store`)."""
        return manifest_path(self.base(), asset_name)

    def stored_manifest(self, asset_name: str, log: Logger | None = None) -> Manifest | None:
        """The manifest of this asset's last materialization here, or None if there is none
        usable (an unreadable one is said so, by path, before everything is rebuilt)."""
        return stored_manifest(self.base(), asset_name, log)
