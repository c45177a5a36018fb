"""The Celery app the workers run: `celery -A em_assets.deploy.workers worker`.

Dagster's `dagster_celery.app` takes its broker from a file `dagster-celery worker start`
writes under `$DAGSTER_HOME` (with the URL, password included, in clear); this app reads the
same `EM_CELERY_*` variables as the launcher instead. Each task rebuilds the run's job from
its module (`em_assets.deploy.definitions` or `.scale_out`), so a worker needs the project
installed and the project's `EM_*`, `AWS_*` and `DAGSTER_PG_*` variables; the instance comes
with the task.
"""

from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from em_assets.deploy.executor import celery_app_args

app = make_app(celery_app_args())
execute_plan = create_task(app)
