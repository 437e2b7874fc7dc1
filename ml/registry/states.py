"""The approval states of a version and the state a judgement starts it in; the transitions, and the tags
that show them to people, are `ml.registry.approval`. Both the verdict (`ml.registry.trust`) and the
transitions read these names, so they live apart from either."""

from __future__ import annotations

from ml.gates import Gate

PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
DECIDED = (APPROVED, REJECTED)
AUTO, MANUAL = "auto", "manual"  # how a decision was made: by the gates, the policy or a timeout; by a person


def initial_state(gates: list[Gate], policy: str) -> str:
    """'rejected' when a gate fails; otherwise 'approved' under the auto policy, 'pending' (a person
    decides) under the manual one."""
    if not all(g.passed for g in gates):
        return REJECTED
    return APPROVED if policy == "auto" else PENDING
