"""What a run reads that is not data: the code location and every library its steps import.

The rchar baseline of the content-bytes row. `dagster asset list` loads the code location,
but not what the steps import on first use (cloud-volume, ncempy with SciPy, pandas,
matplotlib, s3fs, gcsfs, Dagster's run machinery); measured at smoke sizes, those imports
alone read about 80 MB of .py/.pyc/.so, which the re-run would otherwise count as content.
A library a step imports that is missing here shows up as excess in that row.
"""

import importlib

MODULES = (
    "dagster._cli",
    "dagster._core.execution.api",
    "dagster._core.executor.in_process",
    "em_assets.definitions",
    "cloudvolume",
    "cloudvolume.exceptions",
    "ncempy.io.dm",
    "pandas",
    "matplotlib.figure",
    "filelock",
    "s3fs",
    "gcsfs",
    "tifffile",
    "zarr",
    "PIL.Image",
)


def main() -> None:
    for name in MODULES:
        importlib.import_module(name)
    definitions = importlib.import_module("em_assets.definitions")
    definitions.defs.get_repository_def()  # built, as the CLI builds it


if __name__ == "__main__":
    main()
