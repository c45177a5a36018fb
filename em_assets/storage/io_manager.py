"""The IO manager: each asset's small JSON value at `{root}/{asset_key}.json`.

Only manifests and reports pass through here; file bodies and arrays are streamed to
storage by the assets themselves, as Dagster recommends for large data.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from dagster import ConfigurableIOManagerFactory, InputContext, OutputContext, UPathIOManager
from pydantic import BaseModel
from upath import UPath

from em_assets.storage.root import StorageRoot


class MissingAssetValueError(FileNotFoundError):
    """An upstream asset has never been materialized into this storage root."""


def _materialize_hint(asset_name: str) -> str:
    return f"dagster asset materialize -m em_assets --select '{asset_name}'"


class JsonIOManager(UPathIOManager):
    """Stores values as JSON and returns them as the type the consuming asset annotates."""

    extension: ClassVar[str] = ".json"

    def dump_to_path(self, context: OutputContext, obj: Any, path: UPath) -> None:
        if isinstance(obj, BaseModel):
            text = obj.model_dump_json(indent=2)
        else:
            text = json.dumps(obj, indent=2, sort_keys=True)
        # Readers (a running report, another step) must never see half a manifest.
        staging = path.with_name(path.name + ".tmp")
        staging.write_text(text)
        staging.fs.mv(staging.path, path.path)

    def load_from_path(self, context: InputContext, path: UPath) -> Any:
        if not path.exists():
            name = context.asset_key.to_user_string()
            raise MissingAssetValueError(
                f"asset {name!r} has no stored value at {path}; materialize it first "
                f"({_materialize_hint(name)})."
            )
        data = json.loads(path.read_text())
        wanted = context.dagster_type.typing_type
        if isinstance(wanted, type) and issubclass(wanted, BaseModel):
            return wanted.model_validate(data)
        return data


class JsonIOManagerFactory(ConfigurableIOManagerFactory):
    """Builds the JSON IO manager on the shared storage root."""

    storage: StorageRoot

    def create_io_manager(self, context) -> JsonIOManager:
        return JsonIOManager(base_path=self.storage.base())
