"""
### promote_model: gates, approval, then the challenger becomes champion

Runs when `retrain_model` updates the **challenger** Asset, or by hand with a `version` (empty: the
version the `challenger` alias points at).

1. **check_gates**: better than the champion by `CONTINUUM_PROMOTION_MARGIN` on the shared holdout (or,
   with no champion, above `CONTINUUM_PROMOTION_FLOOR`), trained only on valid hours, scoring latency
   and model size within limits, the registered file the one the run trained; judged on the training
   run's params and metrics and the artifact, never on tags. The verdict and the model's SHA-256 go to
   the version's verdict in the lake (what sidecars and batch scoring trust), and
   each gate is mirrored as a tag on the version (`gate_<name>`) for people. A failed gate
   tags it `approval=rejected`; with `CONTINUUM_APPROVAL_POLICY=auto` passing gates tag it
   `approval=approved`, with `manual` it shows `approval=pending`. The task log and XCom hold the
   evidence: metric diff, gate verdicts, MLflow links, drift report.
2. **wait_for_approval**: under the manual policy, a human-in-the-loop request in Airflow (Required
   actions) that only the users of `CONTINUUM_APPROVERS` may answer, Approve or Reject; the answer,
   naming the user Airflow authenticated, goes to the verdict bound to the model's digest and is
   mirrored on the version's tags (a tag set in MLflow decides nothing). After
   `CONTINUUM_APPROVAL_TIMEOUT_MINUTES` the version is rejected (timeout) and the task fails.
3. **promote_champion**: `champion` moves to the version, the old champion becomes `previous`, and the
   move is recorded once in the lake's audit trail, naming who approved it (a retry finishes a move cut
   short and records it once). A rejected version is skipped here; one whose file changed, or whose
   approval was given for other bytes or more than `CONTINUUM_APPROVAL_TTL_HOURS` ago, fails it.
4. **announce_promotion**: a `promotion` message on the control topic, so every sidecar swaps.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, task

from ml.settings import load_settings
from plugins.assets import CHALLENGER
from plugins.dag_ids import PROMOTE_MODEL
from plugins.notifiers.on_call import on_failure_notifier
from plugins.operators.approve_version import ApproveVersionOperator

_settings = load_settings()  # schedule-level settings only: the start date


@dag(
    dag_id=PROMOTE_MODEL,
    schedule=[CHALLENGER],
    start_date=_settings.offload.start,
    catchup=False,
    max_active_runs=1,
    tags=["continuum", "promotion", "mlflow"],
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1), "on_failure_callback": on_failure_notifier},
    params={"version": Param(None, type=["null", "string"], description="version to promote; empty: the challenger")},
    doc_md=__doc__,
)
def promote_model():
    @task
    def check_gates(params=None) -> dict:
        from plugins.tasks.promotion import check

        return check(params.get("version"))

    @task
    def promote_champion(evidence: dict) -> dict:
        from plugins.tasks.promotion import promote

        return promote(evidence["version"])

    @task
    def announce_promotion(record: dict) -> dict:
        from plugins.tasks.promotion import announce

        return announce(record)

    evidence = check_gates()
    wait = ApproveVersionOperator(task_id="wait_for_approval", version=evidence["version"])
    promoted = promote_champion(evidence)
    wait >> promoted
    announce_promotion(promoted)


promote_model()
