"""The daily summary of one version on one day: volume, alerts, scores and, once labels exist, accuracy.

Outcomes are read through their manifests from the day's start until the contract's longest label
delay after its end, so every outcome of the day's events that the lake holds counts. Accuracy figures
(`ml.evaluate.classification_metrics`, at the version's threshold) appear only when the labelled
events hold both classes; label coverage says how many events they speak for.
"""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd

from ml.batch.score import DayScores
from ml.contract import Contract
from ml.evaluate import classification_metrics
from ml.lake import Lake
from ml.lake.layout import manifest_key
from ml.lake.window import Window
from ml.validation import read_hour

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
BINS = 20  # histogram bins of width 0.05 over [0, 1]


def day_outcomes(lake: Lake, contract: Contract, window: Window) -> tuple[pd.DataFrame, list[str]]:
    """(join key, label) of every outcome the lake holds for events of the window, and the hours read."""
    label = contract.label
    frames, hours = [], []
    for hour in Window(window.start, window.end + timedelta(minutes=label.max_delay_minutes)).hours():
        try:
            manifest = json.loads(lake.read_text(manifest_key("outcomes", hour)))
        except FileNotFoundError:
            continue
        df, problems = read_hour(lake, contract, "outcomes", manifest)
        if not problems:
            frames.append(df[[label.join_key, label.field]])
            hours.append(hour.start.isoformat())
    if not frames:
        return pd.DataFrame({label.join_key: pd.Series(dtype=str), label.field: pd.Series(dtype="int64")}), hours
    return pd.concat(frames, ignore_index=True).drop_duplicates(label.join_key, keep="last"), hours


def summarize(scores: DayScores, outcomes: pd.DataFrame, outcome_hours: list[str], contract: Contract,
              lake: Lake) -> dict:
    """Everything the daily page shows, as plain JSON values."""
    model, table = scores.model, scores.table
    p = table.column("score").to_numpy()
    alerts = int(np.count_nonzero(p >= model.threshold))
    counts, edges = np.histogram(p, bins=BINS, range=(0.0, 1.0))
    return {
        "day": f"{scores.day:%Y-%m-%d}",
        "model": {"name": model.name, "version": model.version, "threshold": model.threshold},
        "events": len(p), "alerts": alerts, "alert_rate": alerts / len(p) if len(p) else None,
        "score": {
            "mean": float(p.mean()) if len(p) else None,
            "quantiles": {f"p{round(q * 100):02d}": float(np.quantile(p, q)) for q in QUANTILES} if len(p) else {},
            "histogram": {"edges": [round(float(e), 4) for e in edges], "counts": counts.tolist()},
        },
        "hours": {"scored": len(scores.hours), "first": min(scores.hours, default=None),
                  "last": max(scores.hours, default=None), "skipped": scores.skipped},
        "labels": {**_labels(contract, table, p, outcomes, model.threshold), "outcome_hours": len(outcome_hours)},
        "predictions": lake.url(scores.key),
    }


def _labels(contract: Contract, table, p: np.ndarray, outcomes: pd.DataFrame, threshold: float) -> dict:
    label = contract.label
    truth = pd.Series(outcomes[label.field].to_numpy(), index=outcomes[label.join_key].to_numpy())
    ids = table.column(contract.event_id).to_numpy(zero_copy_only=False)
    y = truth.reindex(ids).to_numpy(dtype="float64")
    known = ~np.isnan(y)
    out = {"labelled": int(known.sum()), "coverage": float(known.mean()) if len(p) else 0.0,
           "positives": int(np.nansum(y)), "metrics": None, "note": ""}
    if not known.any():
        out["note"] = "no matured outcomes in the lake for these events yet"
    elif len(np.unique(y[known])) < 2:
        out["note"] = "the labelled events hold one class only: no AUC"
    else:
        out["metrics"] = classification_metrics(y[known].astype(int), p[known], threshold)
    return out
