"""A model rolled back after its bake window fails the bake gate: its verdict is refused, whatever it was."""

from __future__ import annotations

from ml.gates import bake_gate
from ml.registry.trust import with_mark
from ml.registry.states import APPROVED, REJECTED

VERDICT = {"model": "m", "version": "8", "digest": "ab" * 32, "passed": True, "decision": APPROVED,
           "gates": [{"name": "metric", "passed": True, "detail": "", "inputs": {}}]}
MARK = {"model": "m", "version": "8", "digest": "ab" * 32, "actor": "monitor_model (bake)", "at": "2026-11-20T13:00:00+00:00",
        "reason": "worse than v7", "audit_id": "x"}


def test_a_marked_model_fails_the_bake_gate_and_its_verdict_is_rejected():
    marked = with_mark(VERDICT, MARK)
    assert marked["passed"] is False and marked["decision"] == REJECTED
    assert [g["name"] for g in marked["gates"] if not g["passed"]] == ["bake"]
    assert "never promoted again" in marked["gates"][-1]["detail"]
    assert with_mark(marked, MARK)["gates"] == marked["gates"]  # marking twice adds one gate


def test_an_unmarked_model_keeps_its_verdict():
    assert with_mark(VERDICT, None) == VERDICT
    assert bake_gate(None).passed
