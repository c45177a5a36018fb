"""How a run executes its steps: in one process unless asked for several.

Every step process re-imports Dagster and the project (about 100 MB and a second each),
which on one machine costs more than it buys: downloads stream, and crops already copy
their blocks in parallel threads. So runs default to one process, keeping a run's memory
at one interpreter plus what its transfers hold. Parallel step processes stay one line of
run config away (`{"execution": {"config": {"multiprocess": {}}}}`), and a team that
outgrows one machine swaps in a distributed executor (see README, "Running at scale").

This is Dagster's own `multi_or_in_process_executor`, `configured` with the same choices
and only the default flipped (Dagster's is multiprocess).
"""

from typing import Any

from dagster import (
    Field,
    Selector,
    in_process_executor,
    multi_or_in_process_executor,
    multiprocess_executor,
)


def _as_chosen(config: dict[str, Any]) -> dict[str, Any]:
    """The choice passes through unchanged: only its default differs from Dagster's."""
    return config


in_process_or_multiprocess = multi_or_in_process_executor.configured(
    _as_chosen,
    name="in_process_or_multiprocess",
    config_schema=Field(
        Selector(
            {
                "in_process": in_process_executor.config_schema.as_field(),
                "multiprocess": multiprocess_executor.config_schema.as_field(),
            }
        ),
        default_value={"in_process": {}},
        description="in_process (default) or multiprocess, with that executor's own config",
    ),
)
