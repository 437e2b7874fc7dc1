"""
### monitor_model: drift, live performance and model age, to a retrain decision with its evidence

Runs whenever `lake_offload` validates an hour (the **validated_telemetry** Asset), and by hand.
Each window ends at the end of a validated hour; a run triggered by a backlog of hours evaluates each of
them in order. By hand: *Trigger* with `end` (an hour, UTC) and `hours` (how many windows ending there):
that is also how a range is re-evaluated (a backfill) after a late offload or a policy change.

1. **plan_windows**: which windows this run evaluates.
2. **evaluate_windows**, for each window:
   - *data drift*: the last `CONTINUUM_DRIFT_WINDOW_HOURS` valid telemetry hours against the reference
     sample the champion was trained on, with Evidently (distance per feature: Wasserstein for numbers,
     Jensen-Shannon for categories; sampled to `CONTINUUM_DRIFT_SAMPLE_ROWS`), the share of drifted
     features and which of the model's most important features moved. The HTML report and a JSON
     summary go to the run's drift report in the lake and to an MLflow run of `<model>-monitoring`;
   - *live performance*: the champion's predictions joined with the late outcomes by event id, on the
     latest hours whose labels have all had time to arrive; ROC AUC, PR AUC, precision and recall at the
     serving threshold, only with enough mature labels and coverage;
   - *the decision* (`ml/policy.py`): **metric** (live AUC under the floor or dropped from the holdout
     AUC), **data** (drift share at or above the threshold for k consecutive windows), **schedule** (model older
     than its maximum age) or **none**, with a cooldown and a daily budget. Every decision, `none`
     included, goes to the lake with its evidence (paths: `ml/lake/layout.py`), and to the task log.
3. **request_retrain**: when a decision asks for a retrain, updates the **retrain_request** Asset (its
   extra holds the reason and the evidence), which schedules `retrain_model`, and alerts on-call once per
   decision with the reason and the report links. Skipped when nothing asks for a retrain.
4. **roll_back_champion**: while a new champion is on probation (`CONTINUUM_BAKE_HOURS` after its
   promotion) the sidecar's shadow scores the champion it replaced, and each window compares the two
   on the same matured events with a paired DeLong test on ROC AUC (`ml/monitor/bake.py`). When the new
   one is worse by more than `CONTINUUM_BAKE_AUC_MARGIN` at `CONTINUUM_BAKE_CONFIDENCE`, it is rolled
   back as rollback_model does (alias moves, audit record, control message, on-call alert with the
   evidence) and its model file is marked so no promotion takes it again. Skipped otherwise.
5. **update_loop_report**: redraws the loop report, one page in the lake: live AUC, label coverage,
   drift share, decisions, the version serving, retrains and promotions over time, and the audit trail.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowSkipException

from ml.settings import load_settings
from plugins.assets import RETRAIN_REQUEST, VALIDATED_TELEMETRY
from plugins.dag_ids import MONITOR_MODEL
from plugins.notifiers.on_call import on_failure_notifier

_settings = load_settings()  # schedule-level settings only: the start date


@dag(
    dag_id=MONITOR_MODEL,
    schedule=VALIDATED_TELEMETRY,
    start_date=_settings.offload.start,
    catchup=False,
    max_active_runs=1,
    tags=["continuum", "monitoring", "drift", "evidently"],
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1), "on_failure_callback": on_failure_notifier},
    params={
        "end": Param(None, type=["null", "string"],
                     description="the end of the (last) window, an hour in UTC such as 2026-11-22T14:00Z; "
                                 "empty: the hours the validated data announces, else the last closed hour"),
        "hours": Param(1, type="integer", minimum=1, maximum=744,
                       description="how many hourly windows ending at `end` to evaluate (a backfill)"),
    },
    doc_md=__doc__,
)
def monitor_model():
    @task
    def plan_windows(params=None, triggering_asset_events=None) -> list[str]:
        from plugins.tasks.monitor import window_ends

        events = [dict(e.extra or {}) for evs in (triggering_asset_events or {}).values() for e in evs]
        return window_ends(dict(params or {}), events)

    @task
    def evaluate_windows(ends: list[str]) -> list[dict]:
        from plugins.tasks.monitor import evaluate

        return evaluate(ends)

    @task(outlets=[RETRAIN_REQUEST])
    def request_retrain(outcomes: list[dict], outlet_events=None) -> dict:
        from plugins.tasks.monitor import alert_decisions, retrain_request

        alerts = alert_decisions(outcomes)
        request = retrain_request(outcomes)
        if request is None:
            raise AirflowSkipException("no decision asks for a retrain: " +
                                       "; ".join(f"{o['run_id']}: {o['kind']}" for o in outcomes))
        outlet_events[RETRAIN_REQUEST].extra = request
        return {**request, "alerts": alerts}

    @task(trigger_rule="all_done")
    def update_loop_report() -> dict:
        from plugins.tasks.monitor import update_loop_report as update

        return update()

    @task
    def roll_back_champion(outcomes: list[dict]) -> dict:
        from plugins.tasks.monitor import roll_back_failed_bake

        done = roll_back_failed_bake(outcomes)
        if done is None:
            raise AirflowSkipException("no champion on probation was found worse than the one it replaced")
        return done

    outcomes = evaluate_windows(plan_windows())
    [request_retrain(outcomes), roll_back_champion(outcomes)] >> update_loop_report()


monitor_model()
