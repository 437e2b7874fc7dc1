"""A candidate from a training frame, pure: the time split and its checks, the search, the holdout figures.

    candidate = fit_candidate(contract, frame, settings.retrain)         # frame: labelled, in event-time order
    incumbent = on_holdout(champion_booster, contract, candidate.split.holdout, threshold, "3")
    inputs = candidate.gate_inputs(incumbent)                           # what the promotion gates judge

`train_candidate` (the retrain DAG) runs it on the lake's training set and logs the result to MLflow;
the backtest (`ml.backtest`) runs it on a recorded file's rows and keeps the model in memory. Both
compare the candidate with the champion on the same holdout and judge it with `ml.gates.check_gates`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pandas as pd

from ml.contract import Contract, model_frame
from ml.evaluate import evaluate, score
from ml.gates import GateInputs
from ml.monitor.estimate import fit_calibration
from ml.settings import RetrainSettings
from ml.train.dataset import Split, check_split, time_split
from ml.train.fit import FitResult, fit


@dataclass
class Candidate:
    """The fitted booster, its split, the search's result, its holdout figures (`ml.evaluate.evaluate`),
    the serving threshold it is tagged with, and its scores' calibration on the holdout
    (`ml.monitor.estimate.fit_calibration`), which lets monitoring estimate its figures before labels come;
    and the rows of each part and the training failures. A window streamed from the lake
    (`ml.train.streamed`) keeps in `split` only the search's samples of its training and validation rows."""

    split: Split
    result: FitResult
    metrics: dict
    threshold: float
    calibration: dict | None = None
    rows: dict = field(default_factory=dict)
    train_positives: int = 0

    @property
    def booster(self):
        return self.result.booster

    def logged(self, incumbent: dict | None) -> dict:
        """The metrics its training run records: its own, the search's, and the champion's on the same
        holdout (`champion_` prefixed), which the metric gate compares."""
        out = {**self.metrics, "search_seconds": self.result.seconds, "valid_logloss": self.result.best_score}
        if incumbent:
            out.update({f"champion_{k}": v for k, v in incumbent["metrics"].items()})
        return out

    def gate_inputs(self, incumbent: dict | None, validation: str = "valid") -> GateInputs:
        """The gates' evidence for this candidate kept in memory: what its run would log, and its model
        file (UBJ, the bytes the registry would store) as the artifact."""
        raw = bytes(self.booster.save_raw("ubj"))
        digest = hashlib.sha256(raw).hexdigest()
        return GateInputs(metrics=self.logged(incumbent), champion_version=incumbent["version"] if incumbent else None,
                          validation=validation, trained_digest=digest, model_bytes=len(raw), digest=digest)


def fit_candidate(contract: Contract, frame: pd.DataFrame, retrain: RetrainSettings, hyperparameters: dict | None = None,
                  search_seconds: float | None = None) -> Candidate:
    """Split `frame` (labelled rows sorted by event time) by time, refuse a split too small to learn or
    judge (`DatasetError`), search and fit within the budget, evaluate on the holdout at the serving
    threshold of `retrain`, and calibrate its scores on the holdout's labels."""
    label = contract.label.field
    split = time_split(frame, retrain.holdout_fraction, retrain.validation_fraction)
    check_split(split, label, retrain.min_rows, retrain.min_per_class)
    result = fit(model_frame(contract, split.train), split.train[label], model_frame(contract, split.valid),
                 split.valid[label], search_seconds or retrain.search_seconds, retrain.max_rounds, hyperparameters,
                 retrain.search_rows)
    holdout = split.holdout
    return Candidate(split, result, evaluate(result.booster, contract, holdout, retrain.threshold), retrain.threshold,
                     fit_calibration(holdout[label], score(result.booster, contract, holdout)),
                     {"train": len(split.train), "valid": len(split.valid), "holdout": len(holdout)},
                     int(split.train[label].sum()))


def on_holdout(booster, contract: Contract, holdout: pd.DataFrame, threshold: float, version: str) -> dict:
    """A champion's figures on a candidate's holdout, at the champion's own threshold."""
    return {"version": version, "metrics": evaluate(booster, contract, holdout, threshold)}
