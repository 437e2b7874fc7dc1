"""A version's approval: pending until its gates or a person decide, then approved or rejected.

    state = initial_state(gates, settings.gates.approval_policy)              # at judgement: the policy
    tag_gates(client, name, "7", gates)                                       # each gate's verdict, for people
    request(client, name, "7", mv.tags)                                       # pending, unless decided
    decide(client, lake, name, "7", APPROVED, BY_POLICY, AUTO, "every gate passed")
    state, tags = read_decision(tracking_uri, name, "7")                      # what a person set in MLflow
    accept(lake, name, "7", state, tags)                                      # ... added to the verdict
    expire(client, lake, name, "7", minutes=60)                               # nobody decided: rejected

A decision lives in two places with two readers. The version's tags (`approval`, `approved_by`,
`approval_reason`, one `gate_<name>` per gate) are for people: the MLflow UI shows them and a person
approves or rejects by setting them. The verdict in the lake (`ml.registry.trust`) is what serving trusts:
each decision is added to it, bound to the digest that was judged, so a tag edited alone never lets a
version serve.
"""

from __future__ import annotations

from mlflow import MlflowClient

from ml.gates import Gate
from ml.lake import Lake
from ml.registry import trust
from ml.registry.states import APPROVED, AUTO, DECIDED, MANUAL, PENDING, REJECTED, initial_state

__all__ = ["APPROVAL", "APPROVAL_REASON", "APPROVED", "APPROVED_BY", "AUTO", "BY_GATES", "BY_POLICY", "BY_TIMEOUT",
           "DECIDED", "GATE_TAG_PREFIX", "MANUAL", "PENDING", "REJECTED", "accept", "decide", "decided_by", "expire",
           "initial_state", "read_decision", "request", "tag_gates"]

APPROVAL, APPROVED_BY, APPROVAL_REASON = "approval", "approved_by", "approval_reason"
GATE_TAG_PREFIX = "gate_"
TAG_VALUE_LIMIT = 5000  # characters MLflow keeps of a tag value
BY_POLICY, BY_GATES, BY_TIMEOUT = "policy:auto", "gates", "timeout"
UNKNOWN = "unknown"


def tag_gates(client: MlflowClient, name: str, version: str, gates: list[Gate]) -> None:
    """Tag each gate's verdict (`gate_<name>`: pass or fail, with its numbers) on the version, for the
    person who decides in the MLflow UI."""
    for gate in gates:
        verdict_text = f"{'pass' if gate.passed else 'fail'}: {gate.detail}"
        client.set_model_version_tag(name, version, f"{GATE_TAG_PREFIX}{gate.name}", verdict_text[:TAG_VALUE_LIMIT])


def request(client: MlflowClient, name: str, version: str, tags: dict) -> None:
    """Mark a version as waiting for a person (`pending`), unless its tags show it decided already."""
    if tags.get(APPROVAL) not in DECIDED:
        client.set_model_version_tag(name, version, APPROVAL, PENDING)


def decide(client: MlflowClient, lake: Lake | None, name: str, version: str, state: str, by: str, how: str,
           why: str) -> None:
    """Record a decision (approved or rejected; by whom, `auto` or `manual`, why): in the version's verdict
    in the lake (what serving trusts; None when nothing was judged) and, for people, as tags on the version."""
    if lake is not None:
        trust.record_approval(lake, name, version, state, by, how, why)
    client.set_model_version_tag(name, version, APPROVAL, state)
    client.set_model_version_tag(name, version, APPROVED_BY, by)
    client.set_model_version_tag(name, version, APPROVAL_REASON, why)


def expire(client: MlflowClient, lake: Lake, name: str, version: str, minutes: float) -> None:
    """Mark a version nobody decided on in time as rejected by timeout."""
    decide(client, lake, name, version, REJECTED, BY_TIMEOUT, AUTO, f"no decision within {minutes:g} minutes")


def read_decision(tracking_uri: str, name: str, version: str) -> tuple[str | None, dict]:
    """What the version's tags say now: `approved` or `rejected` (None while nobody decided), with the
    tags themselves (who decided and why, as a person set them in the MLflow UI)."""
    tags = dict(MlflowClient(tracking_uri).get_model_version(name, str(version)).tags)
    state = tags.get(APPROVAL)
    return (state if state in DECIDED else None), tags


def decided_by(tags: dict) -> str:
    """Who the version's tags say decided on it."""
    return tags.get(APPROVED_BY, UNKNOWN)


def accept(lake: Lake, name: str, version: str, state: str, tags: dict) -> None:
    """Add a person's decision, read from the version's tags, to its verdict (a rejection of a version that
    was never judged has nothing to add to)."""
    if state == REJECTED and trust.read_verdict(lake, name, version) is None:
        return
    trust.record_approval(lake, name, str(version), state, decided_by(tags), MANUAL,
                          tags.get(APPROVAL_REASON) or f"{state} in the registry")
