"""The XGBoost search: its trials, the time budget, fixed hyperparameters, the native booster it returns."""

from __future__ import annotations

import time

import xgboost as xgb

from ml.contract import load_contract, model_frame
from ml.simulate.stream import SimConfig, Simulator
from ml.train import candidates, fit, time_split

CONTRACT = load_contract("machine_telemetry")


def data(rate=3.0):
    df = Simulator(CONTRACT, SimConfig(devices=30, rate=rate, seed=11)).frame(0, 2 * 3_600_000)
    split = time_split(df, 0.2, 0.2)
    return (model_frame(CONTRACT, split.train), split.train["failure"], model_frame(CONTRACT, split.valid),
            split.valid["failure"])


def test_the_defaults_come_first_and_fixed_values_hold_in_every_trial():
    trials = candidates()
    assert trials[0] == {"max_depth": 6, "learning_rate": 0.2, "min_child_weight": 1.0, "subsample": 0.8,
                         "colsample_bytree": 0.8}
    assert len({tuple(sorted(t.items())) for t in trials}) == len(trials) > 1
    fixed = candidates({"max_depth": 3, "learning_rate": None})
    assert {t["max_depth"] for t in fixed} == {3} and len({t["learning_rate"] for t in fixed}) > 1


def test_a_tiny_budget_runs_one_trial_and_returns_a_cut_native_booster():
    result = fit(*data(), budget_seconds=0.001, max_rounds=200)
    assert len(result.trials) == 1
    assert isinstance(result.booster, xgb.Booster)
    assert result.booster.num_boosted_rounds() == result.best_iteration + 1 <= 200
    assert result.booster.save_config().count("binary:logistic") >= 1


def test_the_search_keeps_to_its_budget_and_picks_the_best_trial():
    started = time.perf_counter()
    result = fit(*data(rate=0.5), budget_seconds=5.0, max_rounds=10)
    assert time.perf_counter() - started < 5.0 + 3 * max(t["seconds"] for t in result.trials)
    assert len(result.trials) >= 2
    assert result.best_score == min(t["valid_logloss"] for t in result.trials)


def test_searching_a_sample_then_fitting_every_row():
    X, y, Xv, yv = data()
    result = fit(X, y, Xv, yv, budget_seconds=0.001, max_rounds=100, search_rows=1000)
    assert result.trials[0]["seconds"] > 0
    assert result.booster.num_boosted_rounds() == result.best_iteration + 1
