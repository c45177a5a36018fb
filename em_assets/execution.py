"""How a run executes its steps: in one process unless asked for several.

Every step process re-imports Dagster and the project (about 100 MB and a second each),
which on one machine costs more than it buys: downloads stream, and crops already copy
their blocks in parallel threads. So runs default to one process, keeping a run's memory
at one interpreter plus what its transfers hold. Parallel step processes stay one line of
run config away (`{"execution": {"config": {"multiprocess": {}}}}`), and a team that
outgrows one machine swaps in a distributed executor (see README, "Running at scale").
"""

from dagster import (
    Executor,
    Field,
    InitExecutorContext,
    Selector,
    executor,
    in_process_executor,
    multiple_process_executor_requirements,
    multiprocess_executor,
)

_CHOICES = {"in_process": in_process_executor, "multiprocess": multiprocess_executor}


def _requirements(config):
    return multiple_process_executor_requirements() if "multiprocess" in config else []


@executor(
    name="in_process_or_multiprocess",
    config_schema=Field(
        Selector({name: choice.config_schema.as_field() for name, choice in _CHOICES.items()}),
        default_value={"in_process": {}},
        description="in_process (default) or multiprocess, with that executor's own config",
    ),
    requirements=_requirements,
)
def in_process_or_multiprocess(init_context: InitExecutorContext) -> Executor:
    ((name, config),) = init_context.executor_config.items()
    chosen = _CHOICES[name]
    return chosen.executor_creation_fn(  # type: ignore[misc]
        InitExecutorContext(
            job=init_context.job,
            executor_def=chosen,
            executor_config=config,
            instance=init_context.instance,
        )
    )
