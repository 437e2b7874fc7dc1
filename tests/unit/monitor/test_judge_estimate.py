"""The estimated AUC in the judgement: off by default, an early metric trigger under its own floor when
switched on, and never when the estimator was found unreliable."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ml.monitor.champion import ChampionInfo
from ml.monitor.judge import WindowInputs, judge_window, trusted_estimate
from ml.policy import METRIC, NONE, Evidence, Policy, decide
from ml.settings import LiveSettings, MonitorSettings, SettingsError, load_settings

END = datetime(2026, 11, 22, 14, tzinfo=timezone.utc)
H = timedelta(hours=1)
INFO = ChampionInfo("2", "run-2", 0.5, 0.9, END - 30 * H)
NOT_MATURE = {"judged": False, "labels": 0, "mature": 0}  # the live window has no mature labels yet
EARLY = MonitorSettings(live=LiveSettings(min_mature_labels=100, estimate_auc_floor=0.6))


def estimate(auc: float, rows: int = 1000, unreliable: bool | None = None) -> dict:
    return {"recent": {"roc_auc": auc, "rows": rows}, "matured": {}, "unreliable": unreliable}


def judged(estimated, monitor=EARLY, live=NOT_MATURE):
    return judge_window(WindowInputs(END, INFO, None, live, [], lambda when: None, estimated), monitor, 6 * H)


def test_by_default_the_estimate_is_recorded_evidence_and_decides_nothing():
    out = judged(estimate(0.3), monitor=MonitorSettings())
    assert out.evidence.estimated_auc == 0.3 and out.evidence.estimated_rows == 1000
    without = judged(None, monitor=MonitorSettings()).decision
    assert (out.decision.kind, out.decision.reason, out.decision.fired) == (NONE, without.reason, ())
    assert "estimated" not in out.decision.reason


def test_an_estimate_under_its_floor_asks_for_a_metric_retrain_before_the_labels_come():
    under = judged(estimate(0.5999))
    assert under.decision.kind == METRIC and under.decision.retrain
    assert "estimated AUC 0.5999 < estimate floor 0.6000 on 1000 predictions" in under.decision.reason
    at = judged(estimate(0.6))
    assert at.decision.kind == NONE and "estimated AUC 0.6000 >= estimate floor" in at.decision.reason


def test_an_estimate_on_too_few_predictions_or_found_unreliable_is_not_used():
    assert judged(estimate(0.3, rows=99)).decision.kind == NONE
    assert judged(estimate(0.3, rows=100)).decision.kind == METRIC  # as many as the live AUC needs
    flagged = judged(estimate(0.3, unreliable=True))
    assert flagged.decision.kind == NONE and flagged.evidence.estimated_auc is None
    assert judged(estimate(0.3, unreliable=False)).decision.kind == METRIC
    assert trusted_estimate(None) == {} and trusted_estimate({"recent": {"roc_auc": None, "rows": 0}}) == {}


def test_the_live_auc_keeps_precedence_over_the_estimate():
    live = {"judged": True, "roc_auc": 0.65, "labels": 500, "mature": 500}
    out = judged(estimate(0.3), live=live)
    assert out.decision.kind == METRIC and out.decision.reason.startswith("live AUC 0.6500 < floor")
    healthy = judged(estimate(0.95), live={**live, "roc_auc": 0.89})
    assert healthy.decision.kind == NONE


def test_the_estimate_settings_come_from_the_environment_and_are_checked():
    settings = load_settings(estimate_tolerance=0.05, estimate_auc_floor=0.55)
    assert (settings.live.estimate_tolerance, settings.live.estimate_auc_floor) == (0.05, 0.55)
    assert Policy.from_settings(settings.drift, settings.live, settings.retrain).estimate_auc_floor == 0.55
    with pytest.raises(SettingsError, match="CONTINUUM_ESTIMATE_TOLERANCE.*fix: set it to a number in"):
        LiveSettings(estimate_tolerance=0.0)
    assert decide(Evidence(now=END, estimated_auc=0.1, estimated_rows=10_000), Policy()).kind == NONE
