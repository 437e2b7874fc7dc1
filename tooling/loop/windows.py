"""Per hour played: what the served versions scored on it, beside what the first champion alone would have.

For every paced hour, the served predictions (the sidecar's records in the lake) are joined by event id
with the outcomes the lake holds by the end of the replay; accuracy is at each version's own serving
threshold. The first champion's figures come from batch scoring the same hour's events (the telemetry
in the lake) with the first champion, on the same labelled events, so the gain of retraining is the
difference of two figures on identical rows.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from ml.contract import Contract, model_frame
from ml.lake import Lake
from ml.lake.window import HOUR, Window
from ml.monitor.live import read_hours
from ml.registry import load_version


def per_hour(lake: Lake, contract: Contract, tracking_uri: str, model: str, first: str, hours: list[datetime],
             labels_until: datetime) -> list[dict]:
    """One row per hour: served versions, events, labelled events, served accuracy and ROC AUC, and the
    first champion's accuracy and ROC AUC on the same labelled events."""
    event_id, label = contract.event_id, contract.label
    outcomes = read_hours(lake, contract, "outcomes", Window(hours[0], labels_until)) if hours else pd.DataFrame()
    if len(outcomes):
        outcomes = outcomes[[label.join_key, label.field]].drop_duplicates(label.join_key, keep="last")
    models: dict[str, tuple[xgb.Booster, float]] = {}

    def booster(version: str) -> tuple[xgb.Booster, float]:
        if version not in models:
            found, threshold, _ = load_version(tracking_uri, model, version)
            models[version] = (found, threshold)
        return models[version]

    rows = []
    for hour in hours:
        window = Window(hour, hour + HOUR)
        preds = read_hours(lake, contract, "predictions", window)
        events = read_hours(lake, contract, "telemetry", window)
        row = {"hour": hour.isoformat(), "events": len(events), "served_by": [], "labels": 0,
               "accuracy": None, "roc_auc": None, "first_accuracy": None, "first_roc_auc": None}
        if preds.empty or events.empty or outcomes.empty:
            rows.append(row)
            continue
        preds = preds.drop_duplicates(event_id, keep="last")
        joined = preds.merge(outcomes, left_on=event_id, right_on=label.join_key, how="inner")
        row["served_by"] = sorted(preds["model_version"].astype(str).unique().tolist(), key=int)
        row["labels"] = len(joined)
        if joined.empty:
            rows.append(row)
            continue
        y = joined[label.field].astype(int).to_numpy()
        thresholds = joined["model_version"].astype(str).map(lambda v: booster(v)[1]).to_numpy(dtype=float)
        row["accuracy"] = float(((joined["score"].to_numpy(float) >= thresholds) == y).mean())
        row["roc_auc"] = _auc(y, joined["score"].to_numpy(float))
        scored = events[events[event_id].isin(joined[event_id])].drop_duplicates(event_id)
        scored = scored.merge(joined[[event_id, label.field]], on=event_id, how="inner")
        first_model, first_threshold = booster(first)
        p = first_model.inplace_predict(model_frame(contract, scored))
        y_first = scored[label.field].astype(int).to_numpy()
        row["first_accuracy"] = float(((p >= first_threshold) == y_first).mean())
        row["first_roc_auc"] = _auc(y_first, p)
        rows.append(row)
    return rows


def gain(rows: list[dict], since: datetime | None) -> dict:
    """Mean served and first-champion accuracy over the hours from `since` (all hours when None) that
    have labelled events, and their difference: the gain of retraining."""
    chosen = [r for r in rows if r["accuracy"] is not None and (since is None or r["hour"] >= since.isoformat())]
    if not chosen:
        return {"hours": 0, "served_accuracy": None, "first_accuracy": None, "gain": None}
    served = float(np.mean([r["accuracy"] for r in chosen]))
    first = float(np.mean([r["first_accuracy"] for r in chosen]))
    return {"hours": len(chosen), "served_accuracy": round(served, 4), "first_accuracy": round(first, 4),
            "gain": round(served - first, 4)}


def _auc(y: np.ndarray, p: np.ndarray) -> float | None:
    return float(roc_auc_score(y, p)) if len(set(y.tolist())) == 2 else None
