"""The retrain policy: each trigger, what it needs to fire, precedence, cooldown and budget, the record."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from ml.lake import Lake
from ml.policy import Evidence, Policy, decide, record_decision
from ml.settings import load_settings

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
POLICY = Policy(drift_share_threshold=0.3, drift_windows_k=3, live_auc_floor=0.7, live_auc_drop_margin=0.05,
                min_mature_labels=500, max_model_age_hours=336, cooldown_hours=6, daily_budget=2)
CALM = dict(drift_shares=(0.1, 0.0, 0.1), live_auc=0.90, live_labels=900, mature_labels=800,
            champion_auc=0.91, model_age_hours=24.0)


def evidence(**changes) -> Evidence:
    return Evidence(now=NOW, **{**CALM, **changes})


def test_calm_evidence_decides_none_and_says_why():
    decision = decide(evidence(), POLICY)
    assert decision.kind == "none" and not decision.retrain and decision.fired == ()
    assert "no trigger fired" in decision.reason
    assert "live AUC 0.9000 healthy" in decision.reason and "model age 24.0 h <= max 336 h" in decision.reason


def test_drift_over_the_threshold_for_k_consecutive_windows_asks_for_data_retrain():
    decision = decide(evidence(drift_shares=(0.0, 0.5, 0.4, 0.6)), POLICY)
    assert decision.kind == "data" and decision.retrain
    assert "3 consecutive windows" in decision.reason


@pytest.mark.parametrize("shares", [(0.1, 0.1, 0.9), (0.5, 0.1, 0.5, 0.5), (0.9, 0.9), (0.29, 0.3, 0.3)])
def test_a_spike_or_too_short_a_run_does_nothing(shares):
    decision = decide(evidence(drift_shares=shares), POLICY)
    assert decision.kind == "none"
    assert "of 3 windows" in decision.reason


def test_a_share_at_the_threshold_counts_as_drifted_as_in_the_evidently_report():
    # 3 of 10 features: the report's own test ("share of drifted columns less than 0.3") fails there too
    decision = decide(evidence(drift_shares=(3 / 10, 0.3, 0.3)), POLICY)
    assert decision.kind == "data" and decision.retrain
    assert "at or above 0.30 for 3 consecutive windows" in decision.reason


def test_live_auc_under_the_floor_asks_for_metric_retrain():
    decision = decide(evidence(live_auc=0.65, champion_auc=0.68), POLICY)
    assert decision.kind == "metric" and decision.retrain
    assert "< floor 0.7000" in decision.reason


def test_live_auc_dropping_from_the_holdout_by_more_than_the_margin_asks_for_metric_retrain():
    decision = decide(evidence(live_auc=0.84, champion_auc=0.91), POLICY)
    assert decision.kind == "metric" and "dropped 0.0700" in decision.reason
    assert decide(evidence(live_auc=0.87, champion_auc=0.91), POLICY).kind == "none"


def test_too_few_mature_labels_means_no_metric_decision():
    decision = decide(evidence(live_auc=0.5, live_labels=5000, mature_labels=499), POLICY)
    assert decision.kind == "none"
    assert "499 mature labels, need 500" in decision.reason


def test_a_model_older_than_its_maximum_age_asks_for_schedule_retrain():
    decision = decide(evidence(model_age_hours=337.0), POLICY)
    assert decision.kind == "schedule" and decision.retrain
    assert decide(evidence(model_age_hours=336.0), POLICY).kind == "none"


def test_metric_comes_before_data_before_schedule_and_the_others_are_named():
    everything = decide(evidence(live_auc=0.6, drift_shares=(0.5, 0.5, 0.5), model_age_hours=400.0), POLICY)
    assert everything.kind == "metric" and everything.fired == ("metric", "data", "schedule")
    assert "also fired: data, schedule" in everything.reason
    assert decide(evidence(drift_shares=(0.5, 0.5, 0.5), model_age_hours=400.0), POLICY).kind == "data"


def test_cooldown_holds_a_retrain_back_but_the_decision_stays():
    decision = decide(evidence(live_auc=0.6, recent_retrains=(NOW - timedelta(hours=2),)), POLICY)
    assert decision.kind == "metric" and decision.suppressed_by == "cooldown" and not decision.retrain
    assert "cooldown 6 h" in decision.reason
    later = decide(evidence(live_auc=0.6, recent_retrains=(NOW - timedelta(hours=7),)), POLICY)
    assert later.retrain and later.suppressed_by is None


def test_a_retrain_still_waiting_for_its_data_holds_the_next_one_until_its_deadline():
    asked = (NOW - timedelta(hours=8),)  # the cooldown has passed
    waiting = decide(evidence(live_auc=0.6, recent_retrains=asked, pending_until=NOW + timedelta(hours=1)), POLICY)
    assert waiting.kind == "metric" and waiting.suppressed_by == "pending" and not waiting.retrain
    assert (NOW + timedelta(hours=1)).isoformat() in waiting.reason
    assert waiting.evidence["pending_until"] == (NOW + timedelta(hours=1)).isoformat()
    # past its deadline the retrain failed or was refused: a new one may be asked for
    assert decide(evidence(live_auc=0.6, recent_retrains=asked, pending_until=NOW), POLICY).retrain


def test_the_daily_budget_holds_a_retrain_back():
    two_today = (NOW - timedelta(hours=20), NOW - timedelta(hours=10))
    decision = decide(evidence(model_age_hours=400.0, recent_retrains=two_today), POLICY)
    assert decision.kind == "schedule" and decision.suppressed_by == "budget" and not decision.retrain
    one_today = (NOW - timedelta(hours=30), NOW - timedelta(hours=10))
    assert decide(evidence(model_age_hours=400.0, recent_retrains=one_today), POLICY).retrain


def test_the_policy_reads_its_thresholds_from_settings():
    settings = load_settings(drift_windows_k=5, retrain_daily_budget=1, live_auc_floor=0.8)
    policy = Policy.from_settings(settings.drift, settings.live, settings.retrain)
    assert (policy.drift_windows_k, policy.daily_budget, policy.live_auc_floor) == (5, 1, 0.8)


def test_every_decision_is_recorded_with_its_evidence(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    key = record_decision(lake, decide(evidence(), POLICY), "run-1")
    assert key == "decisions/run-1.json"
    record = json.loads(lake.read_text(key))
    assert record["kind"] == "none" and record["retrain"] is False and record["run_id"] == "run-1"
    assert record["evidence"]["drift_shares"] == [0.1, 0.0, 0.1] and record["evidence"]["now"] == NOW.isoformat()
    assert record["policy"]["drift_windows_k"] == 3
    assert list(record) == sorted(record)
