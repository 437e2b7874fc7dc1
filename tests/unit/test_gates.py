"""Promotion gates and the approval policy, on the evidence a training run logs and its artifact."""

from __future__ import annotations

import pytest

from ml.gates import GateInputs, check_gates, failed
from ml.registry.approval import APPROVED, PENDING, REJECTED, initial_state
from ml.settings import GateSettings

SETTINGS = GateSettings(margin=0.01, floor=0.8, max_latency_ms=50, max_model_bytes=1_000_000)


def tags(auc=0.90, champion=None, champion_auc=None, validation="valid", latency=10.0, size=200_000,
         digest="ab" * 32, trained="ab" * 32):
    metrics = {"holdout_roc_auc": auc, "latency_ms_per_1k": latency}
    if champion:
        metrics["champion_holdout_roc_auc"] = champion_auc
    return GateInputs(metrics, champion, validation, trained, size, digest)


def verdicts(gates):
    return {g.name: g.passed for g in gates}


def test_a_first_model_needs_only_the_absolute_floor():
    all_pass = dict(metric=True, validation=True, latency=True, size=True, artifact=True)
    assert verdicts(check_gates(tags(0.85), None, SETTINGS)) == all_pass
    gates = check_gates(tags(0.75), None, SETTINGS)
    assert failed(gates) == ["metric"] and "floor 0.8000" in gates[0].detail


def test_the_challenger_must_beat_the_champion_by_the_margin():
    assert verdicts(check_gates(tags(0.92, "3", 0.90), "3", SETTINGS))["metric"]
    gates = check_gates(tags(0.905, "3", 0.90), "3", SETTINGS)
    assert failed(gates) == ["metric"]
    assert "+0.0050 < margin 0.0100" in gates[0].detail and "champion v3" in gates[0].detail


def test_a_comparison_against_an_older_champion_does_not_count():
    gates = check_gates(tags(0.99, "3", 0.90), "4", SETTINGS)
    assert failed(gates) == ["metric"] and "champion is now 4" in gates[0].detail


@pytest.mark.parametrize("change, gate", [({"validation": "invalid"}, "validation"), ({"latency": 80.0}, "latency"),
                                          ({"size": 2_000_000}, "size"), ({"digest": "cd" * 32}, "artifact"),
                                          ({"trained": None}, "artifact")])
def test_each_limit_is_its_own_gate(change, gate):
    assert failed(check_gates(tags(0.95, **change), None, SETTINGS)) == [gate]


def test_missing_evidence_fails_rather_than_passes():
    nothing = GateInputs({}, None, "", None, None, "ab" * 32)
    assert set(failed(check_gates(nothing, None, SETTINGS))) == {"metric", "validation", "latency", "size", "artifact"}


def test_limits_hold_at_their_edge():
    assert not failed(check_gates(tags(0.8, latency=50.0, size=1_000_000), None, SETTINGS))
    assert verdicts(check_gates(tags(0.91, "3", 0.90), "3", SETTINGS))["metric"]  # exactly the margin


def test_policy_auto_approves_manual_waits_and_a_failed_gate_rejects():
    good, bad = check_gates(tags(0.95), None, SETTINGS), check_gates(tags(0.5), None, SETTINGS)
    assert initial_state(good, "auto") == APPROVED
    assert initial_state(good, "manual") == PENDING
    assert initial_state(bad, "auto") == initial_state(bad, "manual") == REJECTED
