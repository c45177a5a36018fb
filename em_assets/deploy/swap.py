"""One project, several executors: the same definitions with a different executor."""

from dagster import Definitions, ExecutorDefinition


def with_executor(defs: Definitions, executor: ExecutorDefinition) -> Definitions:
    """`defs` with `executor` in place of its own (`Definitions.merge` refuses two executors).

    Everything else (assets, checks, jobs, schedules, sensors, resources) is the very same
    objects, so the deployed graph cannot drift from the project's.
    """
    return Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        schedules=defs.schedules,
        sensors=defs.sensors,
        resources=defs.resources,
        loggers=defs.loggers,
        metadata=defs.metadata,
        executor=executor,
    )
