"""
### batch_score: history scored with a registered version, and a daily summary per version

Every day (a real data interval: the UTC day `[00:00, 24:00)`), once the day has ended and
`CONTINUUM_BATCH_DELAY_MINUTES` (default 120) have passed, so `lake_offload` has written and validated
its last hours; or by hand for any range of days and any version.

1. **plan_days**: the days to score: params `start`..`end` (YYYY-MM-DD, both included; empty: the
   run's data interval, or the last whole day for a manual run without one).
2. **wait_for_offload**: waits until the last of those days has ended plus the delay.
3. **resolve_model**: param `model`, a version number (`7`) or an alias (`champion` by default,
   `challenger`, `previous`), resolved once so every day of the run uses the same version. A scheduled
   run before anything has been promoted is skipped.
4. **score_day** (one per day): the day's *valid* telemetry hours scored with the sidecar's feature code
   and model call, to one Parquet file per version and day (event id, device, event time, score,
   decision, version); and the day's summary (events, alert rate, score quantiles and histogram, and
   where outcomes have matured ROC AUC, PR AUC, precision and recall at the version's threshold, label
   coverage) to a JSON and an HTML page per version and day (paths: `ml/lake/layout.py`).
   A day without valid hours fails, naming the day: run `lake_offload` for it first. Rerunning a day
   rewrites byte-identical Parquet.

**From the UI**: Trigger, fill `start`, `end` and `model`, Trigger. Past days of the schedule: Trigger >
Backfill with a date range.

**From the REST API** (a token first, then the DAG-run endpoint):

    TOKEN=$(curl -s -X POST http://127.0.0.1:8080/auth/token -H 'Content-Type: application/json' \\
        -d '{"username": "admin", "password": "<password>"}' | jq -r .access_token)
    curl -X POST http://127.0.0.1:8080/api/v2/dags/batch_score/dagRuns \\
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
        -d '{"logical_date": null, "conf": {"start": "2026-11-20", "end": "2026-11-21", "model": "champion"}}'

**From the CLI** (on a machine with the Airflow configuration):

    airflow dags trigger batch_score --conf '{"start": "2026-11-20", "end": "2026-11-21", "model": "7"}'
    airflow backfill create --dag-id batch_score --from-date 2026-11-15T00:00:00 --to-date 2026-11-21T00:00:00
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, PokeReturnValue, dag, task

from ml.settings import load_settings
from plugins.dag_ids import BATCH_SCORE
from plugins.notifiers.on_call import on_failure_notifier

_settings = load_settings()  # schedule-level settings only: start, catchup and the default model


@dag(
    dag_id=BATCH_SCORE,
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=_settings.batch.start,
    catchup=_settings.batch.catchup,
    max_active_runs=2,
    tags=["continuum", "batch", "daily"],
    default_args={"retries": 1, "retry_delay": timedelta(minutes=2), "on_failure_callback": on_failure_notifier},
    params={
        "start": Param(None, type=["null", "string"], format="date",
                       description="first day to score, YYYY-MM-DD (empty: the run's data interval)"),
        "end": Param(None, type=["null", "string"], format="date",
                     description="last day to score, included (empty: the same as start)"),
        "model": Param(_settings.batch.model, type="string", pattern=r"^([0-9]+|[A-Za-z][A-Za-z0-9_-]*)$",
                       description="a version number (7) or an alias (champion, challenger, previous)"),
    },
    doc_md=__doc__,
)
def batch_score():
    @task
    def plan_days(params=None, data_interval_start=None, data_interval_end=None, dag_run=None) -> list[str]:
        from plugins.tasks.batch import plan

        return plan(dict(params), data_interval_start, data_interval_end, getattr(dag_run, "run_after", None))

    @task.sensor(poke_interval=300, timeout=36 * 3600, mode="reschedule")
    def wait_for_offload(days: list[str]) -> PokeReturnValue:
        from plugins.tasks.batch import settled

        return PokeReturnValue(is_done=settled(days[-1]))

    @task
    def resolve_model(params=None, dag_run=None) -> dict:
        from plugins.tasks.batch import resolve

        return resolve(params.get("model"), getattr(dag_run.run_type, "value", str(dag_run.run_type)))

    @task(map_index_template="{{ day }}")
    def score_day(day: str, model: dict) -> dict:
        from airflow.sdk import get_current_context

        from plugins.tasks.batch import score

        get_current_context()["day"] = day  # names the mapped task in the UI
        return score(day, model)

    days = plan_days()
    model = resolve_model()
    wait_for_offload(days) >> model
    score_day.partial(model=model).expand(day=days)


batch_score()
