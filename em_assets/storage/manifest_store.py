"""The manifest store: where each asset's manifest lives and how it is read back.

One rule, `{root}/{asset}.json`, used by the IO manager that writes manifests and by
everything that reads them outside a run's inputs (the reuse path, the crop checks, the
schedule and the sensor). Were the two derived separately, a change to one would make
every stored manifest invisible to the other and every refresh download everything again.
"""

from __future__ import annotations

import json
import logging

from pydantic import ValidationError
from upath import UPath

from em_assets.logger import Logger
from em_assets.manifest.model import Manifest
from em_assets.storage.paths import child_path

MANIFEST_SUFFIX = ".json"


def manifest_name(asset_name: str) -> str:
    """The manifest's path relative to the root."""
    return f"{asset_name}{MANIFEST_SUFFIX}"


def manifest_path(base: UPath, asset_name: str) -> UPath:
    """`{root}/{asset_name}.json`."""
    return child_path(base, manifest_name(asset_name))


def stored_manifest(base: UPath, asset_name: str, log: Logger | None = None) -> Manifest | None:
    """The manifest of `asset_name`'s last materialization under `base`, or None if there is
    none usable. An unreadable one is said so, by path, before everything is rebuilt."""
    try:
        return read_manifest(manifest_path(base, asset_name))
    except FileNotFoundError:
        return None
    except UnreadableManifestError as error:
        (log or logging.getLogger("em_assets")).warning(f"{error}; rebuilding {asset_name}")
        return None


class UnreadableManifestError(ValueError):
    """A stored manifest exists but is not a manifest (truncated, emptied, edited)."""


def read_manifest(path: UPath) -> Manifest:
    """The manifest at `path`; FileNotFoundError if absent, UnreadableManifestError (naming
    the path and the first problem) if it does not parse or validate."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise  # absent is not unreadable: the caller decides what absence means
    except (OSError, UnicodeDecodeError) as error:
        raise UnreadableManifestError(f"manifest {path} cannot be read: {error}") from error
    try:
        return Manifest.model_validate(json.loads(text))
    except json.JSONDecodeError as error:
        raise UnreadableManifestError(
            f"manifest {path} is not valid JSON ({error.msg} at line {error.lineno}, "
            f"column {error.colno}; {len(text)} characters)"
        ) from error
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise UnreadableManifestError(
            f"manifest {path} is not a manifest: {error.error_count()} problem(s), the first "
            f"at {where}: {first['msg']}"
        ) from error
