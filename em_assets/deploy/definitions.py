"""The whole graph of `em_assets.definitions`, its steps run by Celery workers."""

from em_assets.definitions import defs as project_defs
from em_assets.deploy.executor import celery_from_environment
from em_assets.deploy.swap import with_executor

defs = with_executor(project_defs, celery_from_environment())
