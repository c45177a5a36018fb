"""The run config of a refresh: each asset as it was last materialized (same files, same crop).

A refresh that fell back to defaults would replace a user's 256³ crop with a 1000³ one;
every manifest records the config that produced it, so a refresh repeats it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from em_assets.storage.root import StorageRoot


def refresh_run_config(storage: StorageRoot, names: Iterable[str]) -> dict[str, Any]:
    """Each of `names` (asset = op names) with the config its stored manifest records."""
    ops = {}
    for name in names:
        stored = storage.stored_manifest(name)
        if stored is not None and stored.run_config:
            ops[name] = {"config": stored.run_config}
    return {"ops": ops} if ops else {}
