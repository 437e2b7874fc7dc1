"""Performance estimated before labels arrive: calibrated scores give an expected confusion matrix and AUC.

    calibration = fit_calibration(holdout_labels, holdout_scores)       # at training, kept with the version
    figures = estimate_figures(served_scores, calibration, threshold)   # any window, no labels needed
    check = compare(figures["roc_auc"], realized_roc_auc, tolerance)     # once the window's labels matured

Labels come minutes to hours after their events, so the live AUC is blind to the latest hours. A model
whose scores are calibrated says, for each event, how likely it is to fail: p_i. Taking the p_i as the
truth's probabilities gives the confusion matrix to expect at the served threshold (E[TP] is the sum of
p_i over the flagged events, E[FP] the sum of 1 - p_i over them, ...), hence accuracy, precision and
recall, and the AUC to expect: the chance that a failing event outranks a healthy one, each pair weighted
by p_i (1 - p_j). The calibration is an isotonic regression of the holdout's labels on the model's
holdout scores (scikit-learn), kept as its thresholds so applying it needs no pickle.

The estimate holds while P(failure | readings) stays the model's: under covariate shift (the readings
move) it follows the realized figures; under concept drift (the same readings fail differently) it
cannot see the change. That gap, measured once a window's labels mature, flags the estimator as
unreliable (`compare`), the signature of concept drift.
"""

from __future__ import annotations

import numpy as np
from sklearn.isotonic import IsotonicRegression

METHOD = "isotonic"


def fit_calibration(labels, scores) -> dict:
    """The isotonic map from scores to failure rates fitted on labelled (holdout) rows, as JSON-able
    thresholds: {"method", "x", "y", "rows", "positives"}. Both classes must be present."""
    y, s = np.asarray(labels, dtype=float), np.asarray(scores, dtype=float)
    if len(y) != len(s):
        raise ValueError(f"calibration: {len(y)} labels for {len(s)} scores; give one label per score")
    if len(y) == 0 or y.min() == y.max():
        raise ValueError("calibration: the labels hold one class only; calibrate on a holdout with failures "
                         "and non-failures")
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
    return {"method": METHOD, "x": [float(v) for v in iso.X_thresholds_],
            "y": [float(v) for v in iso.y_thresholds_], "rows": int(len(y)), "positives": int(y.sum())}


def calibrate(calibration: dict, scores) -> np.ndarray:
    """Calibrated failure probabilities of `scores` (interpolated between the thresholds, clipped at the ends,
    as the fitted isotonic regression predicts)."""
    if calibration.get("method") != METHOD or not calibration.get("x"):
        raise ValueError(f"calibration: expected an {METHOD} calibration with thresholds, got "
                         f"method {calibration.get('method')!r}; retrain the model to record one")
    return np.interp(np.asarray(scores, dtype=float), calibration["x"], calibration["y"])


def expected_confusion(p: np.ndarray, flagged: np.ndarray) -> dict[str, float]:
    """The expected counts at a threshold: `flagged` events (score at or above it) and their probabilities."""
    p, flagged = np.asarray(p, dtype=float), np.asarray(flagged, dtype=bool)
    return {"tp": float(p[flagged].sum()), "fp": float((1 - p[flagged]).sum()),
            "fn": float(p[~flagged].sum()), "tn": float((1 - p[~flagged]).sum())}


def expected_auc(scores, p) -> float | None:
    """The ROC AUC to expect when event i fails with probability p[i]: the sum over ordered pairs (i, j)
    with scores[i] > scores[j] of p_i (1 - p_j), ties counting half, over the sum over all pairs i != j.
    O(n log n). None when no pair can be a failure and a non-failure (every p 0, or every p 1)."""
    s, p = np.asarray(scores, dtype=float), np.asarray(p, dtype=float)
    if len(s) < 2:
        return None
    values, group = np.unique(s, return_inverse=True)
    pos = np.bincount(group, weights=p, minlength=len(values))
    neg = np.bincount(group, weights=1 - p, minlength=len(values))
    self_pairs = np.bincount(group, weights=p * (1 - p), minlength=len(values))
    below = np.cumsum(neg) - neg  # the expected non-failures scored lower than each group
    concordant = float((pos * below).sum() + 0.5 * (pos * neg - self_pairs).sum())
    pairs = float(p.sum() * (1 - p).sum() - (p * (1 - p)).sum())
    return concordant / pairs if pairs > 0 else None


def estimate_figures(scores, calibration: dict, threshold: float) -> dict:
    """The figures expected on a window of served `scores` (no labels): rows, expected failure rate,
    accuracy, precision and recall at `threshold` (scores at or above it are acted on), and ROC AUC."""
    s = np.asarray(scores, dtype=float)
    if len(s) == 0:
        return {"rows": 0, "positive_rate": None, "accuracy": None, "precision": None, "recall": None,
                "roc_auc": None, "threshold": threshold}
    p = calibrate(calibration, s)
    c = expected_confusion(p, s >= threshold)
    flagged, positives = c["tp"] + c["fp"], c["tp"] + c["fn"]
    auc = expected_auc(s, p)
    return {"rows": int(len(s)), "positive_rate": round(positives / len(s), 6),
            "accuracy": round((c["tp"] + c["tn"]) / len(s), 6),
            "precision": round(c["tp"] / flagged, 6) if flagged > 0 else 0.0,
            "recall": round(c["tp"] / positives, 6) if positives > 0 else 0.0,
            "roc_auc": None if auc is None else round(auc, 6), "threshold": threshold}


def compare(estimated_auc: float | None, realized_auc: float | None, tolerance: float) -> dict:
    """Estimate against the realized AUC of the same, matured events: the gap and whether it exceeds
    `tolerance` (`unreliable`: the model's calibration no longer holds, as under concept drift). Not
    judged (`unreliable` None) while either figure is missing."""
    if estimated_auc is None or realized_auc is None:
        return {"estimated_roc_auc": estimated_auc, "realized_roc_auc": realized_auc, "gap": None,
                "tolerance": tolerance, "unreliable": None}
    gap = abs(float(estimated_auc) - float(realized_auc))
    return {"estimated_roc_auc": round(float(estimated_auc), 6), "realized_roc_auc": round(float(realized_auc), 6),
            "gap": round(gap, 6), "tolerance": tolerance, "unreliable": gap > tolerance}


def window_estimate(recent_scores, matured_scores, realized_auc: float | None, calibration: dict | None,
                    threshold: float, tolerance: float) -> dict | None:
    """What a monitored window records beside its live figures: the figures expected on its `recent`
    served scores (labels not in yet), and the check of the estimate on the `matured` window's scores
    against the AUC realized on their labels (`realized_auc`, None when not judged). `unreliable` is
    the check's verdict (None when not judged). None without a calibration (a model trained before
    calibrations were recorded)."""
    if calibration is None:
        return None
    matured = estimate_figures(matured_scores, calibration, threshold)
    check = {"rows": matured["rows"], **compare(matured["roc_auc"], realized_auc, tolerance)}
    return {"recent": estimate_figures(recent_scores, calibration, threshold), "matured": check,
            "unreliable": check["unreliable"]}
