"""The monitor's pure judgement of a window: the decision the policy gives on the evidence it gathers."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from ml.monitor.champion import ChampionInfo
from ml.monitor.judge import WindowInputs, judge_window, learns_reference
from ml.policy import DATA, METRIC, NONE, PENDING, Evidence, Policy, decide
from ml.settings import DriftSettings, LiveSettings, MonitorSettings, RetrainSettings

END = datetime(2026, 11, 22, 14, tzinfo=timezone.utc)
H = timedelta(hours=1)
DELAY = timedelta(hours=6)
INFO = ChampionInfo("2", "run-2", 0.5, 0.9, END - 30 * H)
MONITOR = MonitorSettings(drift=DriftSettings(share_threshold=0.3, windows_k=3), live=LiveSettings(min_mature_labels=100),
                          retrain=RetrainSettings(regime_hours=6, cooldown_hours=6, daily_budget=3))


def rec(hours_back: int, share: float | None, version: str = "2", retrain: bool = False, since: str | None = None):
    return {"evidence": {"now": (END - hours_back * H).isoformat()}, "champion": {"version": version},
            "drift": None if share is None else {"drift_share": share}, "retrain": retrain, "regime_since": since}


def never(when):
    raise AssertionError(f"measured {when}")


def judged(drift=None, live=None, history=(), info=INFO, monitor=MONITOR, measure=never):
    return judge_window(WindowInputs(END, info, drift, live, list(history), measure), monitor, DELAY)


def test_the_judgement_is_the_policy_decision_on_the_evidence_it_gathers():
    history = [rec(1, 0.4), rec(2, 0.35), rec(9, 0.1, retrain=True)]
    out = judged({"judged": True, "drift_share": 0.5}, {"judged": True, "roc_auc": 0.88, "labels": 400, "mature": 400},
                 history)
    expected = Evidence(now=END, drift_shares=(0.35, 0.4, 0.5), live_auc=0.88, live_labels=400, mature_labels=400,
                        champion_auc=0.9, model_age_hours=30.0, recent_retrains=(END - 9 * H,))
    assert out.evidence == expected
    assert out.decision == decide(expected, Policy.from_settings(MONITOR.drift, MONITOR.live, MONITOR.retrain))
    assert out.decision.kind == DATA and out.decision.retrain and out.shares == (0.35, 0.4, 0.5)
    assert out.regime_since == (END - 3 * H).isoformat()  # the last hour of the first drifted window


def test_a_share_just_under_the_threshold_breaks_the_run_and_one_at_it_counts():
    live = {"judged": False, "labels": 10, "mature": 10}
    under = judged({"judged": True, "drift_share": 0.5}, live, [rec(1, 0.4), rec(2, 0.2999)])
    at = judged({"judged": True, "drift_share": 0.5}, live, [rec(1, 0.4), rec(2, 0.3)])
    assert under.decision.kind == NONE and under.regime_since is None
    assert at.decision.kind == DATA and at.decision.retrain


def test_windows_judged_against_another_champion_are_measured_again():
    seen = []
    out = judged({"judged": True, "drift_share": 0.6}, None, [rec(1, 0.9, version="1"), rec(2, 0.9, version="1")],
                 measure=lambda when: seen.append(when) or 0.1)
    assert seen == [END - H, END - 2 * H] and out.shares == (0.1, 0.1, 0.6) and out.decision.kind == NONE


def test_a_retrain_waiting_for_its_regime_holds_the_next_one():
    asked = rec(2, 0.5, retrain=True, since=(END - 4 * H).isoformat())
    out = judged({"judged": True, "drift_share": 0.6}, None, [rec(1, 0.5), asked])
    assert out.decision.kind == DATA and out.decision.suppressed_by == PENDING and not out.decision.retrain
    later = judged({"judged": True, "drift_share": 0.6}, None, [rec(1, 0.5), asked],
                   monitor=replace(MONITOR, retrain=RetrainSettings(regime_hours=0, cooldown_hours=1)))
    assert later.decision.retrain  # no regime wait, and the cooldown (1 h) has passed


def test_a_falling_live_auc_retrains_from_the_live_window_and_keeps_the_hours_out_of_the_reference():
    live = {"judged": True, "roc_auc": 0.6, "labels": 300, "mature": 300, "start": (END - 12 * H).isoformat()}
    out = judged({"judged": False, "reason": "no reference"}, live)
    assert out.decision.kind == METRIC and out.regime_since == (END - 12 * H).isoformat() and out.shares == ()
    assert not learns_reference(MONITOR, 500, live, out.decision)
    healthy = {**live, "roc_auc": 0.89}
    assert learns_reference(MONITOR, 500, healthy, judged(None, healthy).decision)
    assert not learns_reference(MONITOR, 0, healthy, judged(None, healthy).decision)


def test_without_a_champion_nothing_is_asked():
    out = judged(None, None, info=None)
    assert out.decision.kind == NONE and not out.decision.retrain and "no champion" in out.decision.reason
