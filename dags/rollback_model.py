"""
### rollback_model: put a known-good model back in service, by hand

Trigger it with an optional `version` (empty: the version the `previous` alias points at) and a reason.

1. **rollback_champion**: `champion` moves back to that version, the one it leaves becomes `previous`,
   and the move (who triggered it, when, from, to, why) is recorded in the lake's audit trail.
2. **announce_rollback**: a `rollback` message on the control topic, so every sidecar swaps at once.
The task log carries the rollback as a warning for on-call.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, task

from ml.settings import load_settings
from plugins.dag_ids import ROLLBACK_MODEL
from plugins.notifiers.on_call import on_failure_notifier

_settings = load_settings()  # schedule-level settings only: the start date


@dag(
    dag_id=ROLLBACK_MODEL,
    schedule=None,
    start_date=_settings.offload.start,
    catchup=False,
    max_active_runs=1,
    tags=["continuum", "promotion", "mlflow", "manual"],
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30), "on_failure_callback": on_failure_notifier},
    params={
        "version": Param(None, type=["null", "string"], description="version to serve; empty: the previous champion"),
        "reason": Param("rollback", type="string", description="why (recorded in the audit trail)"),
    },
    doc_md=__doc__,
)
def rollback_model():
    @task
    def rollback_champion(params=None, dag_run=None) -> dict:
        from plugins.tasks.promotion import rollback

        actor = getattr(dag_run, "triggering_user_name", None) or "airflow"
        return rollback(params.get("version"), actor, params.get("reason") or "rollback")

    @task
    def announce_rollback(record: dict) -> dict:
        from plugins.tasks.promotion import announce

        return announce(record)

    announce_rollback(rollback_champion())


rollback_model()
