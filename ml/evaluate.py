"""Evaluate a booster on a holdout the way it will serve: the shared feature function, then scoring.

Both the challenger and the champion are scored on the same holdout rows, so their metrics compare.
Latency is the serving path (`model_frame` + `inplace_predict`) on 1,000-row batches; size is the
model's UBJ file, the bytes the sidecar loads. Served predictions joined with their labels are judged
per version that served them (`figures_by_version`), by the monitor and the loop report alike.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from ml.contract import Contract, model_frame

CALIBRATION_BINS = 10
ALERT = "alert"  # a served prediction's decision at or above its version's threshold


def score(booster, contract: Contract, df: pd.DataFrame) -> np.ndarray:
    """Failure probabilities for decoded events: the one scoring path shared with the sidecar."""
    return np.asarray(booster.inplace_predict(model_frame(contract, df)), dtype="float64")


def calibration_error(y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Expected calibration error: the row-weighted gap between mean score and failure rate per score bin."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.sum() * abs(p[mask].mean() - y[mask].mean())
    return float(total / max(len(y), 1))


def classification_metrics(y, p, threshold: float) -> dict[str, float]:
    """ROC AUC, PR AUC, precision and recall at the threshold, Brier score, log loss and calibration error."""
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    flagged = p >= threshold
    tp = int((flagged & (y == 1)).sum())
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "precision": tp / int(flagged.sum()) if flagged.any() else 0.0,
        "recall": tp / int((y == 1).sum()) if (y == 1).any() else 0.0,
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "calibration_error": calibration_error(y, p),
        "positive_rate": float(y.mean()),
    }


def latency_ms_per_1k(booster, contract: Contract, df: pd.DataFrame, repeats: int = 5) -> float:
    """Median milliseconds to score 1,000 decoded events (feature function included)."""
    batch = df.iloc[:1000]
    if len(batch) < 1000:
        batch = batch.iloc[np.arange(1000) % max(len(batch), 1)]
    score(booster, contract, batch)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        score(booster, contract, batch)
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times))


def evaluate(booster, contract: Contract, holdout: pd.DataFrame, threshold: float) -> dict[str, float]:
    """Every holdout figure promotion looks at, prefixed `holdout_`, plus latency and model size."""
    p = score(booster, contract, holdout)
    figures = classification_metrics(holdout[contract.label.field], p, threshold)
    metrics = {f"holdout_{k}": v for k, v in figures.items()}
    metrics["holdout_rows"] = float(len(holdout))
    metrics["latency_ms_per_1k"] = latency_ms_per_1k(booster, contract, holdout)
    metrics["model_bytes"] = float(len(booster.save_raw("ubj")))
    return metrics


def figures_by_version(preds: pd.DataFrame, labelled: pd.DataFrame, label: str) -> dict[str, dict]:
    """For every `model_version` among the served `preds` (one row per prediction): its predictions, how
    many of them have a `label` in `labelled` (the same rows joined with their outcome), the coverage,
    the accuracy of its served decision (at the threshold it served with) and its ROC AUC (None while
    the labels hold one class only), so each version is judged on the events it served itself."""
    out: dict[str, dict] = {}
    if preds.empty:
        return out
    served = preds["model_version"].astype(str).value_counts()
    groups = dict(tuple(labelled.groupby(labelled["model_version"].astype(str)))) if len(labelled) else {}
    for version in sorted(served.index, key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v)):
        n, rows = int(served[version]), groups.get(version)
        y = rows[label].astype(int).to_numpy() if rows is not None else np.array([], dtype=int)
        both = len(np.unique(y)) == 2
        out[version] = {
            "predictions": n, "labels": len(y), "coverage": round(len(y) / n, 4),
            "accuracy": round(float(((rows["decision"] == ALERT).to_numpy() == (y == 1)).mean()), 4) if len(y) else None,
            "roc_auc": round(float(roc_auc_score(y, rows["score"].to_numpy(dtype=float))), 4) if both else None}
    return out
