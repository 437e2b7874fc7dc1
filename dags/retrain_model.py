"""
### retrain_model: a new candidate from validated data, compared with the champion, registered as challenger

Runs when `monitor_model` updates the **retrain_request** Asset, on the weekly cron
(`CONTINUUM_RETRAIN_CRON`, UTC), or by hand (Trigger, with a reason, a window in days and, optionally,
hyperparameters to fix: those the search then leaves alone).

1. **plan_retrain**: the trigger reason and the window: whole hours ending at the last closed hour.
   A run whose retrain requests all judged a champion that has been replaced since is skipped, and so
   is a calendar run while there is no champion (the first model is trained by hand).
2. **wait_for_data**: a retrain asked for by a `data` or `metric` decision learns the new regime: it
   waits (rescheduling, at most `CONTINUUM_RETRAIN_REGIME_TIMEOUT_HOURS`) until
   `CONTINUUM_RETRAIN_REGIME_HOURS` valid hours since the change began have mature labels, and trains
   on those hours. Calendar and manual runs pass at once.
3. **train_candidate**: telemetry of the *valid* hours of the window joined with the matured outcomes
   (by event id), the contract's features and label, a time-ordered split (train, validation, the most
   recent rows as holdout); XGBoost (hist, early stopping) with a time-boxed search; the candidate and
   the champion scored on the same holdout. Too few rows, or one class only, fails with what is
   missing. The MLflow run holds params, metrics, the lake hours and their manifest hashes (lineage),
   the drift reference sample, a feature-importance plot and the model as UBJ.
4. **register_challenger**: a version of the registered model with its tags (trigger, window, data
   hash, validation, holdout metrics, approval pending), alias `challenger`; updates the **challenger**
   Asset, which schedules `promote_model`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from ml.settings import load_settings
from plugins.assets import CHALLENGER, RETRAIN_REQUEST
from plugins.dag_ids import PLAN_RETRAIN, REGIME_POKE_S, REGISTER_CHALLENGER, RETRAIN_MODEL, WAIT_FOR_DATA
from plugins.notifiers.on_call import on_failure_notifier

_settings = load_settings()  # schedule-level settings only: the start, the cron and the wait for data


@dag(
    dag_id=RETRAIN_MODEL,
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable(_settings.retrain.cron, timezone="UTC"),
                                 assets=RETRAIN_REQUEST),
    start_date=_settings.offload.start,
    catchup=False,
    max_active_runs=1,
    tags=["continuum", "training", "mlflow"],
    default_args={"retries": 1, "retry_delay": timedelta(minutes=2), "on_failure_callback": on_failure_notifier},
    params={
        "reason": Param("manual", type="string", description="why you retrain (recorded on the version)"),
        "window_days": Param(None, type=["null", "number"], minimum=0.05,
                             description="days of data; empty: the setting"),
        "max_depth": Param(None, type=["null", "integer"], minimum=1, maximum=16, description="fix the tree depth"),
        "learning_rate": Param(None, type=["null", "number"], exclusiveMinimum=0, maximum=1, description="fix eta"),
        "min_child_weight": Param(None, type=["null", "number"], minimum=0, description="fix min child weight"),
        "search_seconds": Param(None, type=["null", "number"], exclusiveMinimum=0, description="search time budget"),
    },
    doc_md=__doc__,
)
def retrain_model():
    @task(task_id=PLAN_RETRAIN)
    def plan_retrain(params=None, dag_run=None, triggering_asset_events=None) -> dict:
        from plugins.tasks.retrain import plan

        events = [dict(e.extra or {}) for evs in (triggering_asset_events or {}).values() for e in evs]
        return plan(getattr(dag_run.run_type, "value", str(dag_run.run_type)), dict(params), events)

    @task.sensor(task_id=WAIT_FOR_DATA, poke_interval=REGIME_POKE_S,
                 timeout=_settings.retrain.regime_timeout_hours * 3600, mode="reschedule")
    def wait_for_data(request: dict):
        from plugins.tasks.retrain import regime

        return regime(request)

    @task
    def train_candidate(request: dict) -> dict:
        from plugins.tasks.retrain import train

        return train(request)

    @task(task_id=REGISTER_CHALLENGER, outlets=[CHALLENGER])
    def register_challenger(summary: dict, outlet_events=None) -> dict:
        from plugins.tasks.retrain import register

        registered = register(summary)
        outlet_events[CHALLENGER].extra = {"model": registered["model"], "version": registered["version"]}
        return registered

    register_challenger(train_candidate(wait_for_data(plan_retrain())))


retrain_model()
