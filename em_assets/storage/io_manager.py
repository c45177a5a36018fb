"""The IO manager: each asset's small JSON value where the manifest store puts it,
`{root}/{asset_key}.json` (`storage.manifest_store`, the one rule every reader uses too).

Only manifests and reports pass through here; file bodies and arrays are streamed to
storage by the assets themselves, as Dagster recommends for large data.

Storing a dataset's manifest ends its write: the lease its body took is checked and
released here, after the manifest is in place and the files it no longer names are removed
(see `storage.lease` and `storage.orphans`).
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass
from typing import Any

from dagster import ConfigurableIOManagerFactory, InputContext, OutputContext, UPathIOManager
from pydantic import BaseModel, ValidationError
from upath import UPath

from em_assets.manifest.model import Manifest
from em_assets.storage.lease import finish_writing
from em_assets.storage.manifest_store import UnreadableManifestError, manifest_name, read_manifest
from em_assets.storage.orphans import named_entries, remove_orphans
from em_assets.storage.root import StorageRoot
from em_assets.storage.staging import write_atomically


class MissingAssetValueError(FileNotFoundError):
    """An upstream asset has never been materialized into this storage root."""


@dataclass(frozen=True)
class StoredManifest:
    """An upstream manifest as found in storage, for a consumer that names every missing or
    unreadable input at once instead of failing on the first."""

    name: str
    path: str
    manifest: Manifest | None
    problem: str | None
    """None when present and readable; otherwise why not."""


def _materialize_hint(asset_name: str) -> str:
    return f"dagster asset materialize -m em_assets --select '{asset_name}'"


class JsonIOManager(UPathIOManager):
    """Stores values as JSON and returns them as the type the consuming asset annotates.

    With `missing_ok`, an upstream manifest loads as a `StoredManifest` that says whether it
    is missing or unreadable, so a consumer of several inputs can name every such one at once
    instead of failing on the first.
    """

    extension: str | None = ""
    """The suffix is part of the manifest store's name for the asset (`manifest_name`)."""

    def __init__(self, base_path: UPath, missing_ok: bool = False) -> None:
        super().__init__(base_path=base_path)
        self.missing_ok = missing_ok

    def get_asset_relative_path(self, context: InputContext | OutputContext) -> UPath:
        return UPath(manifest_name(context.asset_key.to_user_string()))

    def dump_to_path(self, context: OutputContext, obj: Any, path: UPath) -> None:
        if isinstance(obj, BaseModel):
            text = obj.model_dump_json(indent=2)
        else:
            text = json.dumps(obj, indent=2, sort_keys=True)
        name = context.asset_key.to_user_string()
        lease = finish_writing(self._base_path, name)
        try:
            if lease is not None:
                lease.assert_held()
            # Readers (a running report, another step) must never see half a manifest.
            write_atomically(path, text.encode())
            if lease is not None and isinstance(obj, Manifest):
                directory = self._base_path / obj.dataset
                remove_orphans(directory, named_entries(obj), context.log)
        finally:
            if lease is not None:
                lease.release()

    def load_from_path(self, context: InputContext, path: UPath) -> Any:
        name = context.asset_key.to_user_string()
        if self.missing_ok:
            return _stored_manifest(name, path)
        if not path.exists():
            raise MissingAssetValueError(
                f"asset {name!r} has no stored value at {path}; materialize it first "
                f"({_materialize_hint(name)})."
            )
        wanted = _model_type(context.dagster_type.typing_type)
        if wanted is Manifest:
            try:
                return read_manifest(path)
            except UnreadableManifestError as error:
                raise UnreadableManifestError(
                    f"{error}. Rebuild it with: {_materialize_hint(name)}"
                ) from error
        data = json.loads(path.read_text())
        return wanted.model_validate(data) if wanted else data


def _stored_manifest(name: str, path: UPath) -> StoredManifest:
    try:
        return StoredManifest(name, str(path), read_manifest(path), None)
    except FileNotFoundError:
        return StoredManifest(name, str(path), None, "never materialized")
    except (UnreadableManifestError, ValidationError) as error:
        return StoredManifest(name, str(path), None, str(error))


def _model_type(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model in an annotation such as `Manifest` or `Manifest | None`."""
    for candidate in typing.get_args(annotation) or (annotation,):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


class JsonIOManagerFactory(ConfigurableIOManagerFactory):
    """Builds the JSON IO manager on the shared storage root."""

    storage: StorageRoot
    missing_ok: bool = False

    def create_io_manager(self, context) -> JsonIOManager:
        return JsonIOManager(base_path=self.storage.base(), missing_ok=self.missing_ok)
