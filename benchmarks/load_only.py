"""What a run reads that is not data: the code location and the libraries its steps import.

The rchar baseline of the content-bytes row. `dagster asset list` loads the code location,
but not what the steps import on first use (Dagster's run machinery, zarr, tifffile, PIL);
those imports read tens of MB of .py/.pyc/.so, which the re-run would otherwise count as
content. The list is what an unchanged whole-graph re-run imports, taken from its
`-X importtime` (2026-11-26): it no longer starts cloud-volume, ncempy, pandas, matplotlib,
s3fs or gcsfs, and a library imported here but not by the re-run would hide content bytes.
A library the re-run imports that is missing here (aiobotocore, for one) shows up as excess
in that row: the row errs towards counting too much. The strace row is the direct measure.
"""

import importlib

MODULES = (
    "dagster._cli",
    "dagster._core.execution.api",
    "dagster._core.executor.in_process",
    "em_assets.definitions",
    "filelock",
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
