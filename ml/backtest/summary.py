"""Running the policies side by side and what the comparison reports, per policy:

- retrains: candidates trained; false alarms: those the gates refused; promotions; retrains asked for
  that never trained (too little data, or the regime wait gave up);
- accuracy and ROC AUC per hourly window, on the served predictions with their eventual labels (every
  label, however late): mean and worst over the windows (AUC only where a window holds both classes);
- accuracy after `change_at` (every served prediction of an event at or after it) and before it;
- hours from `change_at` until a better champion serves: one promoted after the change (the gates
  found it better than the champion on a shared holdout), from when it took effect;
- regret: per window, the best accuracy any policy compared reached minus this policy's; its mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from ml.backtest.data import Stream
from ml.backtest.engine import PolicyRun, run_policy
from ml.backtest.models import Models
from ml.backtest.policies import PolicySpec
from ml.lake.window import HOUR
from ml.train import DatasetError


@dataclass(frozen=True)
class BacktestOptions:
    """The hours of history the first champion learns from and the offload's lateness (the swap's delay)."""

    history_hours: int = 24
    lateness: timedelta = timedelta(minutes=10)


def run_policies(stream: Stream, specs: list[PolicySpec], options: BacktestOptions) -> list[PolicyRun]:
    """Train the first champion once, then play every policy on the same hours, sharing trainings and drift."""
    if not stream.hours:
        raise ValueError("backtest: the file holds no events in the slice; check --from/--to and the time options")
    start = stream.hours[0]
    serving_from = start + options.history_hours * HOUR
    if serving_from > stream.hours[-1]:
        raise ValueError(f"--history-hours {options.history_hours}: the file spans only "
                         f"{len(stream.hours)} hours; leave hours after the history to backtest")
    models = Models(stream, specs[0].retrain)
    try:
        first = models.fit(start, serving_from, serving_from, specs[0].retrain)
    except DatasetError as exc:
        raise DatasetError(f"--history-hours {options.history_hours}: the first champion cannot be trained: {exc}; "
                           "give more history hours (or more rows per hour)") from None
    return [run_policy(stream, spec, models, first, serving_from, options.lateness) for spec in specs]


def _hourly(run: PolicyRun) -> pd.DataFrame:
    served = run.served[run.served["label"].notna()]
    rows = []
    for hour, group in served.groupby(served["ts"].dt.floor("h")):
        y = group["label"].astype(int).to_numpy()
        auc = float(roc_auc_score(y, group["score"])) if 0 < y.sum() < len(y) else None
        rows.append({"hour": hour, "accuracy": float((group["flagged"].to_numpy() == y).mean()), "roc_auc": auc})
    return pd.DataFrame(rows).set_index("hour")


def summarize(runs: list[PolicyRun], change_at: datetime | None = None) -> dict:
    """Per policy figures and per-hour accuracy, JSON-able."""
    hourly = {run.spec.name: _hourly(run) for run in runs}
    best = pd.concat([h["accuracy"].rename(n) for n, h in hourly.items()], axis=1).max(axis=1)
    policies = []
    for run in runs:
        h = hourly[run.spec.name]
        trained = [r for r in run.retrains if r.passed is not None]
        served = run.served[run.served["label"].notna()]
        correct = served["flagged"].to_numpy() == served["label"].astype(int).to_numpy()
        after = (served["ts"] >= pd.Timestamp(change_at)).to_numpy() if change_at else np.zeros(len(served), bool)
        better = [r.effective for r in run.retrains if r.effective and change_at and r.effective >= change_at]
        aucs = h["roc_auc"].dropna()
        policies.append({
            "policy": run.spec.name, "kind": run.spec.kind, "overrides": list(run.spec.overrides),
            "retrains": len(trained), "false_alarms": sum(1 for r in trained if not r.passed),
            "promotions": sum(1 for r in trained if r.passed),
            "not_trained": len(run.retrains) - len(trained), "windows": len(h),
            "mean_accuracy": _r(h["accuracy"].mean()), "worst_accuracy": _r(h["accuracy"].min()),
            "mean_roc_auc": _r(aucs.mean()) if len(aucs) else None, "worst_roc_auc": _r(aucs.min()) if len(aucs) else None,
            "accuracy_after_change": _r(correct[after].mean()) if after.any() else None,
            "accuracy_before_change": _r(correct[~after].mean()) if change_at and (~after).any() else None,
            "hours_to_better_champion": (better[0] - change_at) / HOUR if better else None,
            "mean_regret": _r((best.reindex(h.index) - h["accuracy"]).mean()),
            "retrain_log": [_retrain(r) for r in run.retrains],
            "hourly": [{"hour": t.isoformat(), "accuracy": _r(a), "roc_auc": _r(u) if u is not None and u == u else None}
                       for t, a, u in zip(h.index, h["accuracy"], h["roc_auc"])],
            "decisions": [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in d.items()}
                          for d in run.hours],
        })
    return {"change_at": change_at.isoformat() if change_at else None, "policies": policies}


def _retrain(r) -> dict:
    return {"asked_at": r.asked_at.isoformat(), "trigger": r.trigger,
            "trained_at": r.trained_at.isoformat() if r.trained_at else None,
            "window": [t.isoformat() for t in r.window] if r.window else None, "passed": r.passed,
            "failed_gates": list(r.failed_gates), "version": r.version,
            "effective": r.effective.isoformat() if r.effective else None, "note": r.note}


def _r(value) -> float | None:
    return None if value is None or value != value else round(float(value), 4)
