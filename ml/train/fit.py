"""Fit XGBoost on the contract's model frame: hist trees, early stopping, a small time-boxed search.

The search runs on a random sample of at most `search_rows` training rows, binned once
(`QuantileDMatrix`) and reused by every trial, so a trial costs only boosting. Trials run in a fixed
order (the defaults first), each stops early on the validation log loss, and the search ends when the
next trial would overrun its time budget. The best trial's parameters are then fitted once on every
training row (when the search saw a sample), and the booster is cut at its best round. A window
streamed from the lake (`ml.train.streamed`) gives the search its samples and makes that last fit
itself, from a data iterator or on a Dask cluster (`final`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xgboost as xgb

BASE_PARAMS = {"objective": "binary:logistic", "tree_method": "hist", "eval_metric": "logloss", "max_bin": 256}
SEARCH_SPACE = {"max_depth": [6, 4, 8], "learning_rate": [0.2, 0.1, 0.3], "min_child_weight": [1.0, 5.0],
                "subsample": [0.8, 1.0], "colsample_bytree": [0.8, 1.0]}
DEFAULTS = {name: values[0] for name, values in SEARCH_SPACE.items()}
EARLY_STOPPING_ROUNDS = 20


@dataclass
class FitResult:
    """The chosen booster, its hyperparameters and rounds, and every trial the search ran."""

    booster: xgb.Booster
    params: dict
    best_iteration: int
    best_score: float
    trials: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def candidates(fixed: dict | None = None, n: int = 12, seed: int = 0) -> list[dict]:
    """The search's trials: the defaults first, then random draws from SEARCH_SPACE, with `fixed` values
    (hyperparameters a person chose) overriding every trial; duplicates are dropped."""
    fixed = {k: v for k, v in (fixed or {}).items() if v is not None}
    rng = np.random.default_rng(seed)
    out, seen = [], set()
    draws = [DEFAULTS] + [{k: vals[rng.integers(len(vals))] for k, vals in SEARCH_SPACE.items()} for _ in range(n * 4)]
    for draw in draws:
        trial = {**draw, **fixed}
        key = tuple(sorted(trial.items()))
        if key not in seen:
            seen.add(key)
            out.append(trial)
        if len(out) == n:
            break
    return out


def fit(X_train: pd.DataFrame, y_train, X_valid: pd.DataFrame, y_valid, budget_seconds: float,
        max_rounds: int = 400, fixed: dict | None = None, search_rows: int = 200_000, seed: int = 0,
        final: Callable[[dict], xgb.Booster] | None = None) -> FitResult:
    """Search `candidates(fixed)` within `budget_seconds` (the first trial always runs), then fit the best
    parameters on all training rows; returns the booster cut at its best round. `final`, when given,
    makes that last fit (the rows given are then the search's samples): it takes the XGBoost parameters
    and returns a booster trained with early stopping on the validation rows."""
    started = time.perf_counter()
    y_train, y_valid = np.asarray(y_train), np.asarray(y_valid)
    base_score = min(max(float(y_train.mean()), 1e-6), 1 - 1e-6)
    sampled = final is not None or len(X_train) > search_rows
    if len(X_train) > search_rows:
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(len(X_train), search_rows, replace=False))
        vrows = np.sort(rng.choice(len(X_valid), min(len(X_valid), search_rows // 2), replace=False))
        dtrain, dvalid = _matrices(X_train.iloc[rows], y_train[rows], X_valid.iloc[vrows], y_valid[vrows])
    else:
        dtrain, dvalid = _matrices(X_train, y_train, X_valid, y_valid)
    best: FitResult | None = None
    trials: list[dict] = []
    for trial in candidates(fixed, seed=seed):
        elapsed = time.perf_counter() - started
        slowest = max((t["seconds"] for t in trials), default=0.0)
        if trials and elapsed + slowest > budget_seconds:
            break
        t0 = time.perf_counter()
        booster = _train(train_params(trial, base_score, seed), dtrain, dvalid, max_rounds)
        trials.append({**trial, "best_iteration": booster.best_iteration, "valid_logloss": booster.best_score,
                       "seconds": round(time.perf_counter() - t0, 3)})
        if best is None or booster.best_score < best.best_score:
            best = FitResult(booster, trial, booster.best_iteration, booster.best_score)
    assert best is not None
    if sampled:
        del dtrain, dvalid
        params = train_params(best.params, base_score, seed)
        booster = final(params) if final else _train(params, *_matrices(X_train, y_train, X_valid, y_valid), max_rounds)
        best = FitResult(booster, best.params, booster.best_iteration, booster.best_score)
    best.booster = best.booster[: best.best_iteration + 1]
    best.trials, best.seconds = trials, time.perf_counter() - started
    return best


def _matrices(X_train, y_train, X_valid, y_valid) -> tuple[xgb.QuantileDMatrix, xgb.QuantileDMatrix]:
    threads = os.cpu_count() or 1
    dtrain = xgb.QuantileDMatrix(X_train, label=y_train, enable_categorical=True, max_bin=BASE_PARAMS["max_bin"],
                                 nthread=threads)
    dvalid = xgb.QuantileDMatrix(X_valid, label=y_valid, enable_categorical=True, ref=dtrain,
                                 max_bin=BASE_PARAMS["max_bin"], nthread=threads)
    return dtrain, dvalid


def train_params(trial: dict, base_score: float, seed: int) -> dict:
    """The XGBoost parameters of one fit: the fixed ones, the trial's, the seed and the base score."""
    return {**BASE_PARAMS, **trial, "nthread": os.cpu_count() or 1, "seed": seed, "base_score": base_score}


def _train(params: dict, dtrain, dvalid, max_rounds: int) -> xgb.Booster:
    return xgb.train(params, dtrain, num_boost_round=max_rounds, evals=[(dvalid, "valid")],
                     early_stopping_rounds=EARLY_STOPPING_ROUNDS, verbose_eval=False)
