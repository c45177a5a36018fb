"""em_assets: five public electron-microscopy datasets as Dagster assets.

`dagster ... -m em_assets` and `-m em_assets.definitions` load the same definitions.
"""

from em_assets.definitions import defs

__all__ = ["defs"]
