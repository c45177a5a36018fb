"""What the source check asks of a dataset: its name, the resources it reads, and one
`current_version` signature for all of them.

Defined here, below `datasets`, so the refreshes take any dataset (the registry's
`DatasetSpec` satisfies `SourceProbe`) without importing the datasets package back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from em_assets.logger import Logger
from em_assets.storage.root import StorageRoot
from em_assets.transfer.client import HttpClient


@dataclass(frozen=True)
class SourceAccess:
    """What a source-version probe may use: the project's HTTP client, the storage root and
    the resources the dataset declared, by key (resolved once by the sensor)."""

    client: HttpClient
    storage: StorageRoot
    resources: Mapping[str, Any]
    log: Logger

    def resource(self, key: str) -> Any:
        return self.resources[key]


CurrentVersion = Callable[[SourceAccess, dict[str, Any]], str]
"""(source access, the run config the stored copy was made with) -> the version the asset
would record now. A probe reads metadata only."""


class SourceProbe(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def resources(self) -> Mapping[str, Any]: ...

    @property
    def current_version(self) -> CurrentVersion: ...
