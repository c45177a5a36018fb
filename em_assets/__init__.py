"""em_assets: five public electron-microscopy datasets as Dagster assets.

`dagster ... -m em_assets` and `-m em_assets.definitions` load the same definitions.
`defs` is loaded on first use (PEP 562), so the library parts (transfer, formats, reading
the outputs) import without building the Dagster definitions.
"""

from typing import Any

__all__ = ["defs"]


def __getattr__(name: str) -> Any:
    if name == "defs":
        from em_assets.definitions import defs

        return defs
    raise AttributeError(f"module 'em_assets' has no attribute {name!r}")


def __dir__() -> list[str]:
    """Dagster finds `defs` by listing the module: the lazy names must be listed too."""
    return sorted({*globals(), *__all__})
