"""The project deployed across machines: steps on Celery workers, the instance on Postgres.

- `definitions`: the whole graph (`em_assets.definitions`) with the Celery executor.
- `scale_out`: the same for the partitioned crops (`em_assets.scale_out.definitions`).
- `workers`: the Celery app the workers run (`celery -A em_assets.deploy.workers worker`).
- `instance`: writes `$DAGSTER_HOME/dagster.yaml` (Postgres storage, run queue, pools) and
  applies the per-host pool limits (`python -m em_assets.deploy.instance`).

Every setting is an environment variable (see `settings`), read the same way by the
process launching a run and by every worker, so they cannot disagree.
"""
