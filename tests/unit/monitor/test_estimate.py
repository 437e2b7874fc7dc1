"""The estimator's pure parts: the isotonic calibration, the expected confusion matrix and AUC, the check."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from ml.monitor.estimate import (calibrate, compare, estimate_figures, expected_auc, fit_calibration,
                                 window_estimate)

IDENTITY = {"method": "isotonic", "x": [0.0, 1.0], "y": [0.0, 1.0], "rows": 2, "positives": 1}


def brute_force_auc(s: np.ndarray, p: np.ndarray) -> float:
    """Every ordered pair (i, j), i != j: p_i (1 - p_j), concordant when s_i > s_j, half on a tie."""
    num = den = 0.0
    for i, j in itertools.permutations(range(len(s)), 2):
        w = p[i] * (1 - p[j])
        den += w
        num += w * (1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0)
    return num / den


def test_expected_auc_is_the_pair_weighted_sum_ties_counting_half():
    rng = np.random.default_rng(3)
    s = np.round(rng.random(40), 1)  # rounded: many tied scores
    p = rng.random(40)
    assert expected_auc(s, p) == pytest.approx(brute_force_auc(s, p), rel=1e-12)


def test_with_certain_probabilities_the_expected_auc_is_the_realized_one():
    rng = np.random.default_rng(4)
    s = np.round(rng.random(200), 2)
    y = (rng.random(200) < s).astype(int)
    assert expected_auc(s, y.astype(float)) == pytest.approx(roc_auc_score(y, s), rel=1e-12)


def test_expected_auc_needs_a_possible_failure_and_non_failure():
    assert expected_auc([0.2, 0.9], [0.0, 0.0]) is None
    assert expected_auc([0.2, 0.9], [1.0, 1.0]) is None
    assert expected_auc([0.5], [0.5]) is None
    assert expected_auc([0.2, 0.9], [0.0, 1.0]) == 1.0


def test_the_expected_confusion_matrix_gives_accuracy_precision_and_recall():
    s = np.array([0.1, 0.4, 0.5, 0.8])  # identity calibration: p = s; 0.5 and 0.8 are flagged at 0.5
    f = estimate_figures(s, IDENTITY, threshold=0.5)
    tp, fp, fn, tn = 1.3, 0.7, 0.5, 1.5
    assert f["rows"] == 4 and f["positive_rate"] == pytest.approx(1.8 / 4)
    assert f["accuracy"] == pytest.approx((tp + tn) / 4)
    assert f["precision"] == pytest.approx(tp / (tp + fp)) and f["recall"] == pytest.approx(tp / (tp + fn))
    assert f["roc_auc"] == pytest.approx(brute_force_auc(s, s))
    assert estimate_figures(s, IDENTITY, threshold=0.9)["precision"] == 0.0  # nothing flagged, as live metrics say
    assert estimate_figures([], IDENTITY, 0.5)["roc_auc"] is None


def test_the_calibration_is_the_isotonic_regression_kept_as_its_thresholds():
    rng = np.random.default_rng(5)
    scores = rng.random(2000) ** 2
    labels = (rng.random(2000) < np.sqrt(scores)).astype(int)  # the scores understate the failure rate
    calibration = fit_calibration(labels, scores)
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, labels)
    new = np.concatenate([rng.random(500), [-0.5, 1.5]])
    assert calibrate(calibration, new) == pytest.approx(iso.predict(new))
    assert calibration["rows"] == 2000 and calibration["positives"] == labels.sum()
    assert np.all(np.diff(calibration["y"]) >= 0)
    mid = calibrate(calibration, [0.25])[0]
    assert mid == pytest.approx(0.5, abs=0.1)  # sqrt(0.25): the calibrated rate, not the raw score


def test_a_calibration_refuses_labels_it_cannot_learn_from():
    with pytest.raises(ValueError, match="one class only; calibrate on a holdout with failures"):
        fit_calibration([0, 0, 0], [0.1, 0.5, 0.9])
    with pytest.raises(ValueError, match="3 labels for 2 scores"):
        fit_calibration([0, 1, 0], [0.1, 0.5])
    with pytest.raises(ValueError, match="retrain the model to record one"):
        calibrate({"method": "platt", "a": 1.0}, [0.5])


def test_the_estimator_is_unreliable_only_past_the_tolerance():
    assert compare(0.75, 0.5, tolerance=0.25)["unreliable"] is False  # at the edge: not past it
    check = compare(0.75, 0.5, tolerance=0.2499)
    assert check["unreliable"] is True and check["gap"] == pytest.approx(0.25)
    assert compare(0.5, 0.75, tolerance=0.2499)["unreliable"] is True  # either direction
    assert compare(None, 0.8, 0.03)["unreliable"] is None and compare(0.8, None, 0.03)["unreliable"] is None


def test_a_window_estimate_records_the_latest_hours_and_the_matured_check():
    s = np.array([0.1, 0.4, 0.5, 0.8])
    record = window_estimate(s, s, realized_auc=1.0, calibration=IDENTITY, threshold=0.5, tolerance=0.01)
    assert record["recent"]["roc_auc"] == pytest.approx(brute_force_auc(s, s), abs=1e-6)
    assert record["matured"]["rows"] == 4 and record["unreliable"] is True
    not_judged = window_estimate(s, s, realized_auc=None, calibration=IDENTITY, threshold=0.5, tolerance=0.01)
    assert not_judged["unreliable"] is None and not_judged["recent"]["rows"] == 4
    assert window_estimate(s, s, 1.0, calibration=None, threshold=0.5, tolerance=0.01) is None
