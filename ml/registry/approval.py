"""A version's approval: pending until its gates or a person decide, then approved or rejected.

    state = initial_state(gates, settings.gates.approval_policy)              # at judgement: the policy
    tag_gates(client, name, "7", gates)                                       # each gate's verdict, for people
    request(client, name, "7")                                                # pending: a person decides
    decide(client, lake, name, "7", APPROVED, BY_POLICY, AUTO, "every gate passed", ttl_hours=24)
    decide(client, lake, name, "7", APPROVED, "alice", MANUAL, "looks right")  # an approver's answer in Airflow
    expire(client, lake, name, "7", minutes=60)                               # nobody decided: rejected

A decision lives in two places with two readers. The verdict in the lake (`ml.registry.trust`) is what
promotion and serving trust: each decision is added to it, bound to the digest that was judged, with
who made it. Under the manual policy that is the Airflow user who answered promote_model's approval
request (`plugins.operators.approve_version`): Airflow authenticated them and let only the configured
approvers answer. The version's tags (`approval`, `approved_by`, `approval_reason`, one `gate_<name>`
per gate) mirror the decision for people in the MLflow UI; setting them there decides nothing.
"""

from __future__ import annotations

from mlflow import MlflowClient

from ml.gates import Gate
from ml.lake import Lake
from ml.registry import trust
from ml.registry.states import APPROVED, AUTO, DECIDED, MANUAL, PENDING, REJECTED, initial_state

__all__ = ["APPROVAL", "APPROVAL_REASON", "APPROVED", "APPROVED_BY", "AUTO", "BY_GATES", "BY_POLICY", "BY_TIMEOUT",
           "DECIDED", "GATE_TAG_PREFIX", "MANUAL", "PENDING", "REJECTED", "decide", "expire",
           "initial_state", "request", "tag_gates"]

APPROVAL, APPROVED_BY, APPROVAL_REASON = "approval", "approved_by", "approval_reason"
GATE_TAG_PREFIX = "gate_"
TAG_VALUE_LIMIT = 5000  # characters MLflow keeps of a tag value
BY_POLICY, BY_GATES, BY_TIMEOUT = "policy:auto", "gates", "timeout"


def tag_gates(client: MlflowClient, name: str, version: str, gates: list[Gate]) -> None:
    """Tag each gate's verdict (`gate_<name>`: pass or fail, with its numbers) on the version, for people
    reading it in the MLflow UI."""
    for gate in gates:
        verdict_text = f"{'pass' if gate.passed else 'fail'}: {gate.detail}"
        client.set_model_version_tag(name, version, f"{GATE_TAG_PREFIX}{gate.name}", verdict_text[:TAG_VALUE_LIMIT])


def request(client: MlflowClient, name: str, version: str) -> None:
    """Show a version as waiting for a person (`pending`) in the MLflow UI."""
    client.set_model_version_tag(name, version, APPROVAL, PENDING)


def decide(client: MlflowClient, lake: Lake | None, name: str, version: str, state: str, by: str, how: str,
           why: str, ttl_hours: float | None = None) -> None:
    """Record a decision (approved or rejected; by whom, `auto` or `manual`, why): in the version's verdict
    in the lake (what promotion and serving trust; None when nothing was judged) and, for people, as tags
    on the version. The same decision again keeps the first one unless it is `ttl_hours` old."""
    if lake is not None:
        trust.record_approval(lake, name, version, state, by, how, why, ttl_hours)
    client.set_model_version_tag(name, version, APPROVAL, state)
    client.set_model_version_tag(name, version, APPROVED_BY, by)
    client.set_model_version_tag(name, version, APPROVAL_REASON, why)


def expire(client: MlflowClient, lake: Lake, name: str, version: str, minutes: float) -> None:
    """Mark a version nobody decided on in time as rejected by timeout."""
    decide(client, lake, name, version, REJECTED, BY_TIMEOUT, AUTO, f"no decision within {minutes:g} minutes")
