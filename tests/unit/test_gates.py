"""Promotion gates and the approval policy, on version tags as retrain_model writes them."""

from __future__ import annotations

import pytest

from ml.gates import APPROVED, PENDING, REJECTED, check_gates, decide, failed
from ml.settings import load_settings

SETTINGS = load_settings(promotion_margin=0.01, promotion_floor=0.8, promotion_max_latency_ms=50,
                         promotion_max_model_bytes=1_000_000)


def tags(auc=0.90, champion=None, champion_auc=None, validation="valid", latency=10.0, size=200_000):
    out = {"holdout_roc_auc": str(auc), "validation": validation, "latency_ms_per_1k": str(latency),
           "model_bytes": str(size)}
    if champion:
        out.update({"champion_version": champion, "champion_holdout_roc_auc": str(champion_auc)})
    return out


def verdicts(gates):
    return {g.name: g.passed for g in gates}


def test_a_first_model_needs_only_the_absolute_floor():
    all_pass = dict(metric=True, validation=True, latency=True, size=True)
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
                                          ({"size": 2_000_000}, "size")])
def test_each_limit_is_its_own_gate(change, gate):
    assert failed(check_gates(tags(0.95, **change), None, SETTINGS)) == [gate]


def test_missing_evidence_fails_rather_than_passes():
    assert set(failed(check_gates({}, None, SETTINGS))) == {"metric", "validation", "latency", "size"}


def test_policy_auto_approves_manual_waits_and_a_failed_gate_rejects():
    good, bad = check_gates(tags(0.95), None, SETTINGS), check_gates(tags(0.5), None, SETTINGS)
    assert decide(good, "auto") == APPROVED
    assert decide(good, "manual") == PENDING
    assert decide(bad, "auto") == decide(bad, "manual") == REJECTED
