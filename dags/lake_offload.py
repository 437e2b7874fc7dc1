"""
### lake_offload: every hour, Kafka to the lake, then Great Expectations

For each hour (a real data interval, `[start, end)` in UTC), once the hour has closed and the allowed
lateness (`CONTINUUM_OFFLOAD_LATENESS_MINUTES`) has passed:

1. **offload_topic** (telemetry, outcomes, predictions, and the shadow's predictions that the bake window
   compares the new champion with): reads exactly the records whose Kafka timestamp
   falls in the hour, positioned with `offsets_for_times` (no consumer group, nothing committed), and
   writes the topic's hour to the lake as Parquet with a manifest; bad records go to the hour's
   quarantine with their reason (paths: `ml/lake/layout.py`). Reruns and backfills rewrite the same files.
2. **validate_partition**: runs the contract's Great Expectations suite on the telemetry hour; the result
   and Data Docs go to the lake beside the hour's. A critical failure marks the hour invalid and fails the task; an
   hour in which nothing arrived is `empty` and green; a valid or empty hour updates the
   `validated_telemetry` Asset, which schedules `monitor_model`.

A failed task alerts on-call (`task_failed`, with the task's log); an invalid hour instead sends
`hour_invalid` (the summary, its Data Docs and manifest), once. `CONTINUUM_SILENCE_HOURS` empty hours in a
row send one `stream_silent`, and the next hour with events one `stream_back`: see
`plugins/notifiers/on_call.py`.

Backfill a range from the UI (Trigger > Backfill) or with
`airflow backfill create --dag-id lake_offload --from-date 2026-11-20T00:00:00 --to-date 2026-11-21T00:00:00`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import CronDataIntervalTimetable, PokeReturnValue, dag, task

from ml.settings import load_settings
from plugins.assets import VALIDATED_TELEMETRY
from plugins.dag_ids import LAKE_OFFLOAD
from plugins.notifiers.on_call import on_failure_notifier

TOPICS = ["telemetry", "outcomes", "predictions", "predictions_shadow"]
_settings = load_settings()  # schedule-level settings only: start date and catchup


@dag(
    dag_id=LAKE_OFFLOAD,
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=_settings.offload.start,
    catchup=_settings.offload.catchup,
    max_active_runs=3,
    tags=["continuum", "lake", "hourly"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1), "on_failure_callback": on_failure_notifier},
    doc_md=__doc__,
)
def lake_offload():
    @task.sensor(poke_interval=30, timeout=6 * 3600, mode="reschedule")
    def wait_for_lateness(data_interval_end=None) -> PokeReturnValue:
        from plugins.tasks.lake import lateness_passed

        return PokeReturnValue(is_done=lateness_passed(data_interval_end))

    @task(map_index_template="{{ topic }}")
    def offload_topic(kind: str, data_interval_start=None, data_interval_end=None) -> dict:
        from airflow.sdk import get_current_context

        from plugins.tasks.lake import hour_of, offload

        get_current_context()["topic"] = kind  # names the mapped task in the UI
        return offload(kind, hour_of(data_interval_start, data_interval_end))

    @task(outlets=[VALIDATED_TELEMETRY])
    def validate_partition(data_interval_start=None, data_interval_end=None, outlet_events=None) -> dict:
        from plugins.tasks.lake import hour_of, validate

        summary = validate("telemetry", hour_of(data_interval_start, data_interval_end))
        outlet_events[VALIDATED_TELEMETRY].extra = summary
        return summary

    offloaded = offload_topic.expand(kind=TOPICS)
    wait_for_lateness() >> offloaded >> validate_partition()


lake_offload()
