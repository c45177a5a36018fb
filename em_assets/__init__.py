"""em_assets: public electron-microscopy datasets as Dagster assets.

`dagster ... -m em_assets` and `-m em_assets.definitions` load the same definitions.
Both names below are loaded on first use (PEP 562), so a script that only reads images
(`from em_assets import open_image`) never builds the Dagster definitions.
"""

from typing import Any

__all__ = ["defs", "open_image"]


def __getattr__(name: str) -> Any:
    if name == "defs":
        from em_assets.definitions import defs

        return defs
    if name == "open_image":
        from em_assets.images.open import open_image

        return open_image
    raise AttributeError(f"module 'em_assets' has no attribute {name!r}")


def __dir__() -> list[str]:
    """Dagster finds `defs` by listing the module: the lazy names must be listed too."""
    return sorted({*globals(), *__all__})
