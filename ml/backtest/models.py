"""Models kept in memory: training on a window of the recorded stream with the retrain DAG's own
functions, judging a candidate against the champion with the promotion gates, and the drift of a
window against a champion's reference (measured without drawing the monitor's report).

Trained models, drift results and each model's scores of each hour are cached, because the policies
compared share them: two policies that retrain on the same window with the same labels and settings get
the same model (the search is seeded), two that serve the same champion with the same reference see
the same drift, and every policy serves the first champion until its first promotion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from ml.backtest.data import Stream
from ml.contract import model_frame
from ml.lake.window import HOUR
from ml.drift.sketch import frame_drift
from ml.evaluate import score
from ml.gates import Gate, check_gates
from ml.monitor.champion import ChampionInfo
from ml.monitor.reference import Reference, drift_reference
from ml.settings import DriftSettings, GateSettings, RetrainSettings
from ml.train import DatasetError
from ml.train.candidate import Candidate, fit_candidate, on_holdout
from ml.train.track import reference_frame


@dataclass
class Model:
    """A trained model: its booster, threshold, holdout AUC, training window, the feature importances
    drift ranks features by, and the reference sample its training run would log. `key` names the
    training (window and labels' cut-off), which equal trainings share."""

    key: str
    booster: object
    threshold: float
    holdout_auc: float
    trained_until: datetime
    importances: dict[str, float]
    reference: Reference

    def info(self, version: str) -> ChampionInfo:
        """What the monitor knows of it as champion `version`."""
        return ChampionInfo(version, self.key, self.threshold, self.holdout_auc, self.trained_until, self.importances)

    def scores(self, stream: Stream, events: pd.DataFrame) -> np.ndarray:
        return score(self.booster, stream.contract, events)


@dataclass
class Trained:
    """A candidate trained for a request: the model, the gates' verdicts against the champion it was
    compared with (on the candidate's holdout), and whether every gate passed."""

    model: Model
    candidate: Candidate
    gates: list[Gate]

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)


@dataclass
class Models:
    """The cache of trainings and drift results shared by the policies of one backtest."""

    stream: Stream
    retrain: RetrainSettings
    trained: dict[tuple, Candidate | DatasetError] = field(default_factory=dict)
    models: dict[tuple, Model] = field(default_factory=dict)
    drifts: dict[tuple, float | None] = field(default_factory=dict)
    scored: dict[tuple[int, datetime], np.ndarray] = field(default_factory=dict)

    def fit(self, start: datetime, end: datetime, as_of: datetime, retrain: RetrainSettings | None = None) -> Model:
        """The model trained on [start, end) with labels observed before `as_of` (DatasetError when the
        window cannot be trained on)."""
        retrain = retrain or self.retrain
        key = (start, end, as_of, retrain)
        if key not in self.trained:
            frame = self.stream.training_frame(start, end, as_of)
            try:
                if frame.empty:
                    raise DatasetError(f"no valid labelled hours between {start.isoformat()} and {end.isoformat()}")
                self.trained[key] = fit_candidate(self.stream.contract, frame, retrain)
            except DatasetError as exc:
                self.trained[key] = exc
        found = self.trained[key]
        if isinstance(found, DatasetError):
            raise found
        if key not in self.models:  # one object per training: the caches below know a model by its identity
            self.models[key] = self._model(found, key, end)
        return self.models[key]

    def scores(self, model: Model, hour: datetime) -> np.ndarray:
        """`model`'s scores of every event of `hour`, in the hour's order."""
        key = (id(model), hour)
        if key not in self.scored:
            self.scored[key] = model.scores(self.stream, self.stream.events[hour])
        return self.scored[key]

    def _model(self, candidate: Candidate, key: tuple, end: datetime) -> Model:
        contract = self.stream.contract
        split = candidate.split
        window = pd.concat([split.train, split.valid, split.holdout])
        gains = candidate.booster.get_score(importance_type="gain")
        total = sum(gains.values()) or 1.0
        name = f"{key[0]:%m-%dT%H}..{key[1]:%m-%dT%H}@{key[2]:%m-%dT%H}"
        return Model(name, candidate.booster, candidate.threshold, candidate.metrics["holdout_roc_auc"], end,
                     {k: v / total for k, v in gains.items()},
                     Reference.from_training(contract, reference_frame(contract, window)))

    def challenge(self, champion: Model, version: str, start: datetime, end: datetime, as_of: datetime,
                  gates: GateSettings, retrain: RetrainSettings | None = None) -> Trained:
        """Train a candidate, evaluate it and the champion on its holdout, and judge it with the gates."""
        model = self.fit(start, end, as_of, retrain)
        candidate = self.trained[(start, end, as_of, retrain or self.retrain)]
        incumbent = on_holdout(champion.booster, self.stream.contract, candidate.split.holdout, champion.threshold,
                               version)
        return Trained(model, candidate, check_gates(candidate.gate_inputs(incumbent), version, gates))

    def drift(self, drift: DriftSettings, model: Model, reference: Reference, end: datetime) -> dict | None:
        """The drift verdict of the window ending at `end` against `reference`, as the monitor records it:
        None without valid hours, not judged when the reference lacks one of their hours of the day."""
        hours = self.stream.valid_hours(end - drift.window_hours * HOUR, end)
        if not hours:
            return None
        labels = [h.isoformat() for h in hours]
        rows, note = drift_reference(drift, reference, labels)
        if rows is None:
            return {"judged": False, "reason": note, "last_hour": labels[-1]}
        key = (end, drift, id(model), tuple(sorted(reference.sources.items())))
        if key not in self.drifts:
            contract = self.stream.contract
            result = frame_drift(contract, model_frame(contract, rows), model_frame(contract, self.stream.frame(hours)),
                                 drift, model.importances)
            self.drifts[key] = result.drift_share
        return {"judged": True, "drift_share": self.drifts[key], "last_hour": labels[-1]}

    def share(self, drift: DriftSettings, model: Model, reference: Reference, end: datetime) -> float | None:
        """An earlier window's drift share as `monitor_hour` measures it late: only when its last hour is
        valid and the reference holds its hours of the day."""
        verdict = self.drift(drift, model, reference, end)
        if not verdict or not verdict["judged"] or verdict["last_hour"] != (end - HOUR).isoformat():
            return None
        return verdict["drift_share"]
