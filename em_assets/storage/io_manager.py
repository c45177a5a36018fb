"""The IO manager: each asset's small JSON value at `{root}/{asset_key}.json`.

Only manifests and reports pass through here; file bodies and arrays are streamed to
storage by the assets themselves, as Dagster recommends for large data.
"""

from __future__ import annotations

import json
import typing
from typing import Any, ClassVar

from dagster import ConfigurableIOManagerFactory, InputContext, OutputContext, UPathIOManager
from pydantic import BaseModel
from upath import UPath

from em_assets.storage.root import StorageRoot
from em_assets.storage.staging import write_atomically


class MissingAssetValueError(FileNotFoundError):
    """An upstream asset has never been materialized into this storage root."""


def _materialize_hint(asset_name: str) -> str:
    return f"dagster asset materialize -m em_assets --select '{asset_name}'"


class JsonIOManager(UPathIOManager):
    """Stores values as JSON and returns them as the type the consuming asset annotates.

    With `missing_ok`, an upstream value that was never stored loads as None, so a consumer
    of several inputs can name every missing one at once instead of failing on the first.
    """

    extension: ClassVar[str] = ".json"

    def __init__(self, base_path: UPath, missing_ok: bool = False) -> None:
        super().__init__(base_path=base_path)
        self.missing_ok = missing_ok

    def dump_to_path(self, context: OutputContext, obj: Any, path: UPath) -> None:
        if isinstance(obj, BaseModel):
            text = obj.model_dump_json(indent=2)
        else:
            text = json.dumps(obj, indent=2, sort_keys=True)
        # Readers (a running report, another step) must never see half a manifest.
        write_atomically(path, text.encode())

    def load_from_path(self, context: InputContext, path: UPath) -> Any:
        if not path.exists():
            if self.missing_ok:
                return None
            name = context.asset_key.to_user_string()
            raise MissingAssetValueError(
                f"asset {name!r} has no stored value at {path}; materialize it first "
                f"({_materialize_hint(name)})."
            )
        data = json.loads(path.read_text())
        wanted = _model_type(context.dagster_type.typing_type)
        return wanted.model_validate(data) if wanted else data


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
