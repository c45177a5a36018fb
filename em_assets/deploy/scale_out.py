"""The scale-out graph of `em_assets.scale_out.definitions` (crops as block partitions), its
steps run by Celery workers: each partition's blocks can go to a different machine."""

from em_assets.deploy.executor import celery_from_environment
from em_assets.deploy.swap import with_executor
from em_assets.scale_out import definitions as scale_out

# One Definitions at module scope: Dagster refuses a module holding two.
defs = with_executor(scale_out.defs, celery_from_environment())
