"""The whole graph of `em_assets.definitions`, its steps run by Celery workers."""

from em_assets import definitions as project
from em_assets.deploy.executor import celery_from_environment
from em_assets.deploy.swap import with_executor

# One Definitions at module scope: Dagster refuses a module holding two.
defs = with_executor(project.defs, celery_from_environment())
