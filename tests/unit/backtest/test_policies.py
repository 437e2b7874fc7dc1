"""The backtest on a small synthetic file with one sudden change at hour 30: both the inputs (x moves)
and what predicts the label (the side of x that is positive flips) change at once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.backtest.data import load_stream
from ml.backtest.policies import configured, every, never, variant
from ml.backtest.summary import BacktestOptions, run_policies, summarize
from ml.contract import load_contract
from ml.replay import ReplayOptions
from ml.settings import DriftSettings, GateSettings, MonitorSettings, RetrainSettings

CONTRACT = load_contract(str(Path(__file__).resolve().parents[2] / "contracts" / "circle.yaml"))
START = datetime(2026, 3, 1, tzinfo=timezone.utc)
ROWS, HOURS, CHANGE = 200, 48, 30
CHANGE_AT = START + timedelta(hours=CHANGE)
# the search's time box is wide enough for all its trials on any load: the decisions do not depend on the machine;
# fixed distance thresholds, so the share's edge is what the drift policies here are judged on
MONITOR = MonitorSettings(drift=DriftSettings(sample_rows=5_000, calibrate=False),
                          retrain=RetrainSettings(search_seconds=120.0))


def sudden_change(path: Path) -> Path:
    rng = np.random.default_rng(3)
    n, cut = ROWS * HOURS, ROWS * CHANGE
    x = np.concatenate([rng.uniform(0, 1, cut), rng.uniform(0, 0.7, n - cut)])
    y = rng.uniform(0, 1, n)
    inside = np.where(np.arange(n) < cut, x > 0.5, x < 0.35).astype(int)
    pd.DataFrame({"x": x, "y": y, "inside": inside}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    path = sudden_change(tmp_path_factory.mktemp("data") / "change.csv")
    stream = load_stream(str(path), CONTRACT, ReplayOptions(rows_per_hour=ROWS, start=START), timedelta(minutes=10),
                         validate=False)
    specs = [never(MONITOR), every(12, MONITOR), configured(MONITOR),
             variant("edge", "drift.share_threshold=0.5", MONITOR), variant("over", "share_threshold=0.51", MONITOR),
             variant("strict", "gates.margin=1.0", MONITOR)]
    runs = run_policies(stream, specs, BacktestOptions(history_hours=24))
    return {p["policy"]: p for p in summarize(runs, CHANGE_AT)["policies"]}


def asks(policy: dict, kind: str | None = None) -> list[str]:
    return [r["asked_at"] for r in policy["retrain_log"] if kind is None or r["trigger"] == kind]


def test_never_retraining_degrades_after_the_change(summary):
    never_ = summary["never"]
    assert never_["retrains"] == 0 and never_["hours_to_better_champion"] is None
    assert never_["accuracy_before_change"] > 0.95 and never_["accuracy_after_change"] < 0.6


def test_the_configured_policy_retrains_after_the_change_and_recovers(summary):
    conf = summary["configured"]
    assert conf["promotions"] >= 1 and all(t >= CHANGE_AT.isoformat() for t in asks(conf))
    assert asks(conf, "data") and asks(conf, "data")[0] > CHANGE_AT.isoformat()
    assert conf["hours_to_better_champion"] is not None and conf["hours_to_better_champion"] < 15
    assert conf["accuracy_after_change"] > summary["never"]["accuracy_after_change"] + 0.15
    late = [h["accuracy"] for h in conf["hourly"] if h["hour"] >= (START + timedelta(hours=HOURS - 3)).isoformat()]
    assert min(late) > 0.9  # the last hours are served by a model of the new regime
    assert conf["mean_regret"] < summary["never"]["mean_regret"]


def test_a_drift_threshold_at_the_share_fires_and_one_just_above_it_does_not(summary):
    # two features, only x moves: every drifted window has a share of exactly 0.5
    shares = {d["drift_share"] for d in summary["configured"]["decisions"] if d.get("drift_share")}
    assert 0.5 in shares and max(shares) == 0.5
    assert asks(summary["edge"], "data")[0] == asks(summary["configured"], "data")[0]
    over = summary["over"]
    assert not asks(over, "data")  # the drift never asks; the falling live accuracy does, later
    assert not asks(over) or asks(over)[0] > asks(summary["configured"])[0]
    assert (over["hours_to_better_champion"] or 1e9) > summary["configured"]["hours_to_better_champion"]


def test_a_candidate_the_gates_refuse_is_a_false_alarm_and_never_serves(summary):
    strict = summary["strict"]
    assert strict["retrains"] >= 1 and strict["false_alarms"] == strict["retrains"] and strict["promotions"] == 0
    assert all(r["failed_gates"] == ["metric"] for r in strict["retrain_log"] if r["passed"] is False)
    assert strict["accuracy_after_change"] == summary["never"]["accuracy_after_change"]
    assert summary["configured"]["false_alarms"] == summary["configured"]["retrains"] - summary["configured"]["promotions"]


def test_the_calendar_policy_retrains_every_k_windows_through_the_gates(summary):
    cal = summary["every 12"]
    assert asks(cal) == [(START + timedelta(hours=24 + 12 * k)).isoformat() for k in (1, 2)]
    assert cal["retrains"] == 2 and cal["false_alarms"] + cal["promotions"] == 2


def test_a_variant_names_a_bad_setting_and_its_fix():
    with pytest.raises(ValueError, match="CONTINUUM_DRIFT_SHARE_THRESHOLD"):
        variant("bad", "drift.share_threshold=2", MONITOR)
    with pytest.raises(ValueError, match="section.field"):
        variant("bad", "nonsense=1", MONITOR)
    assert variant("ok", "margin=0.01", MONITOR, GateSettings()).gates.margin == 0.01


def test_the_first_champion_serves_from_the_historys_end_plus_the_lateness(summary):
    # as the loop's sidecar: row i lies at i * 18 s, so the first 10 minutes of hour 24 hold 34 unserved rows
    assert [p["decisions"][0]["rows"] for p in summary.values()] == [ROWS - 34] * len(summary)
    assert all(d["rows"] == ROWS for p in summary.values() for d in p["decisions"][1:])
