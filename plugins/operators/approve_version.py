"""Ask an approver, in Airflow, to approve or reject a model version that passed its gates."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param

APPROVE, REJECT = "Approve", "Reject"


class ApproveVersionOperator(HITLOperator):
    """Airflow's human-in-the-loop approval of one model version under the manual policy.

    Only the Airflow users named in CONTINUUM_APPROVERS may answer: Airflow refuses anyone else (the
    request's assigned users), and the answer is checked against the same list again here, so an auth
    manager that lets every user answer still approves nothing. The answer names the user Airflow
    authenticated; it goes to the version's verdict in the lake, bound to the digest judged, and is
    mirrored on the version's tags for people. A tag set in MLflow decides nothing.

    No one is asked when nothing is left to decide: the auto policy approved the version, a gate or a
    person rejected it, or a person approved these same bytes less than CONTINUUM_APPROVAL_TTL_HOURS
    ago. Nobody answering within CONTINUUM_APPROVAL_TIMEOUT_MINUTES rejects it (timeout) and fails the
    task. Returns {"version", "approval", "by"}."""

    template_fields = ("version", "subject", "body")

    def __init__(self, *, version: str, **kwargs) -> None:
        kwargs.pop("params", None)  # the DAG's params; this task's params are the approval form's
        super().__init__(subject="Approve a model version", options=[APPROVE, REJECT], multiple=False,
                         params={"reason": Param("", type="string", description="why (kept with the decision)")},
                         **kwargs)
        self.version = version

    def execute(self, context) -> dict:
        from ml.registry.digest import read_verdict
        from ml.registry.states import APPROVED, REJECTED

        settings, lake, name = self._resolve()
        verdict = read_verdict(lake, name, str(self.version))
        given = (verdict or {}).get("approval") or {}
        if verdict is None or given.get("decision") == REJECTED:
            return self._result(REJECTED, given.get("by", "gates"))
        if given.get("decision") == APPROVED and self._still_valid(verdict, settings):
            return self._result(APPROVED, given["by"])
        approvers = settings.gates.approver_names
        self.assigned_users = [{"id": user, "name": user} for user in approvers]
        self.response_timeout = timedelta(minutes=settings.gates.approval_timeout_minutes)
        self.subject = f"Approve {name} v{self.version}?"
        self.body = _body(verdict, approvers)
        self.log.info("%s v%s waits for one of %s to approve or reject it in Airflow (Required actions), "
                      "for up to %g min", name, self.version, ", ".join(approvers),
                      settings.gates.approval_timeout_minutes)
        return super().execute(context)

    def execute_complete(self, context, event: dict[str, Any]) -> dict:
        from airflow.sdk.exceptions import AirflowFailException
        from mlflow import MlflowClient

        from ml.registry.approval import MANUAL, decide, expire
        from ml.registry.states import APPROVED, REJECTED

        settings, lake, name = self._resolve()
        client = MlflowClient(settings.mlflow_tracking_uri)
        if event.get("error_type") == "timeout":
            expire(client, lake, name, str(self.version), settings.gates.approval_timeout_minutes)
            raise AirflowFailException(f"nobody approved or rejected {name} v{self.version} within "
                                       f"{settings.gates.approval_timeout_minutes:g} minutes; it is tagged rejected "
                                       "(timeout)")
        answer = super().execute_complete(context, event)
        user = answer.get("responded_by_user") or {}
        approvers = settings.gates.approver_names
        if user.get("id") not in approvers:
            raise AirflowFailException(f"{name} v{self.version} was answered by {user.get('name') or 'nobody'} "
                                       f"(id {user.get('id')}), who is not an approver ({', '.join(approvers)}: "
                                       "CONTINUUM_APPROVERS); nothing was recorded: clear the task to ask again")
        state = APPROVED if answer["chosen_options"] == [APPROVE] else REJECTED
        who = user.get("name") or user["id"]
        reason = (answer.get("params_input") or {}).get("reason") or f"{state} in Airflow"
        decide(client, lake, name, str(self.version), state, who, MANUAL, reason)
        self.log.info("%s v%s: %s by %s (authenticated by Airflow): %s", name, self.version, state, who, reason)
        return self._result(state, who)

    def _resolve(self):
        """The settings, the lake and the model name (read at run time, never when the DAG is parsed)."""
        from ml.lake import Lake
        from ml.settings import load_settings

        settings = load_settings()
        return settings, Lake.from_settings(settings.lake), settings.model_name

    def _still_valid(self, verdict: dict, settings) -> bool:
        from ml.registry.trust import NotApproved, valid_approval

        try:
            valid_approval(verdict, verdict["digest"], settings.gates.approval_ttl_hours, datetime.now(timezone.utc))
        except NotApproved as exc:
            self.log.info("asking again: %s", exc)
            return False
        return True

    def _result(self, state: str, by: str) -> dict:
        return {"version": str(self.version), "approval": state, "by": by}


def _body(verdict: dict, approvers: list[str]) -> str:
    """What the approver reads (Markdown): each gate's verdict, the digest approved, who may answer."""
    gates = "\n".join(f"- {'PASS' if g['passed'] else 'FAIL'} **{g['name']}**: {g['detail']}" for g in verdict["gates"])
    return (f"{verdict['model']} v{verdict['version']} passed its gates against champion "
            f"{verdict.get('champion') or '(none yet)'}:\n\n{gates}\n\nApproving approves the model file with "
            f"sha256 `{verdict['digest']}` only, until it is promoted or the approval expires. "
            f"Approvers: {', '.join(approvers)}.")
