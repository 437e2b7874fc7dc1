"""Holdout metrics, calibration and the serving-path evaluation of a booster."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from ml.contract import load_contract, model_frame
from ml.evaluate import calibration_error, classification_metrics, evaluate
from ml.simulate.stream import SimConfig, Simulator

CONTRACT = load_contract("machine_telemetry")


def test_metrics_at_the_threshold():
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.6, 0.7, 0.4, 0.2, 0.9])
    m = classification_metrics(y, p, threshold=0.5)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["roc_auc"] == pytest.approx(8 / 9)
    assert m["positive_rate"] == 0.5
    assert classification_metrics(y, p, threshold=0.95)["precision"] == 0.0


def test_calibration_error_is_zero_when_scores_match_rates_and_large_when_not():
    y = np.array([0] * 8 + [1] * 2)
    assert calibration_error(y, np.full(10, 0.2)) == pytest.approx(0.0)
    assert calibration_error(y, np.full(10, 0.9)) == pytest.approx(0.7)


def test_evaluate_scores_through_the_feature_function():
    df = Simulator(CONTRACT, SimConfig(devices=20, rate=2.0, seed=3)).frame(0, 3_600_000)
    X, y = model_frame(CONTRACT, df), df["failure"].to_numpy()
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3}, xgb.DMatrix(X, y, enable_categorical=True), 20)
    m = evaluate(booster, CONTRACT, df, 0.5)
    assert m["holdout_rows"] == len(df) and 0.8 < m["holdout_roc_auc"] <= 1.0
    assert m["model_bytes"] == len(booster.save_raw("ubj")) > 0
    assert 0 < m["latency_ms_per_1k"] < 1000
