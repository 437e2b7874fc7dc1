"""One retraining: the window's training set, the search, both models on the shared holdout, the MLflow run.

    request = plan_request("schedule", window_days=7, now=datetime.now(timezone.utc))
    summary = train_candidate(lake, contract, settings.retrain, settings.registry, request)  # a RetrainSummary
    version = register_challenger(settings.mlflow_tracking_uri, settings.model_name, summary.run, summary.tags)

`RetrainRequest` (plan -> wait for data -> train) and `RetrainSummary` (train -> register) cross tasks
as dicts through `to_dict`/`from_dict`; `from_dict` names a key the dict lacks.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient

from ml.contract import Contract
from ml.evaluate import score
from ml.handover import require
from ml.lake import Lake
from ml.registry import RegistryError, champion
from ml.registry.versions import DEFAULT_THRESHOLD
from ml.registry.trust import load_trusted
from ml.settings import RegistrySettings, RetrainSettings
from ml.train.candidate import fit_candidate, on_holdout
from ml.train.dataset import TrainingSet, build_training_set, mature_hours
from ml.train.spool import spool_window, window_rows
from ml.train.streamed import fit_streamed
from ml.train.track import log_candidate, version_tags

log = logging.getLogger(__name__)
SCORE_CHECK_ROWS = 200


@dataclass(frozen=True)
class RetrainRequest:
    """Why and on what to retrain: the trigger, the window of event time, when labels count as matured,
    hyperparameters a person fixed, the search budget, and for a retrain the monitor asked for, the
    champion versions its decisions judged (`judged`: a newer champion has answered them)."""

    trigger: str
    start: datetime
    end: datetime
    as_of: datetime
    hyperparameters: dict = field(default_factory=dict)
    search_seconds: float | None = None
    regime_since: datetime | None = None  # a drift-triggered retrain learns from here (see `regime_request`)
    judged: tuple[str | None, ...] = ()

    def to_dict(self) -> dict:
        return {"trigger": self.trigger, "start": self.start.isoformat(), "end": self.end.isoformat(),
                "as_of": self.as_of.isoformat(), "hyperparameters": self.hyperparameters,
                "search_seconds": self.search_seconds,
                "regime_since": self.regime_since.isoformat() if self.regime_since else None,
                "judged": list(self.judged)}

    @classmethod
    def from_dict(cls, data: dict) -> "RetrainRequest":
        require(data, ("trigger", "start", "end", "as_of"), "the retrain request", "retrain_model's plan_retrain")
        since = data.get("regime_since")
        return cls(data["trigger"], datetime.fromisoformat(data["start"]), datetime.fromisoformat(data["end"]),
                   datetime.fromisoformat(data["as_of"]), dict(data.get("hyperparameters") or {}),
                   data.get("search_seconds"), datetime.fromisoformat(since) if since else None,
                   tuple(data.get("judged") or ()))


@dataclass(frozen=True)
class RetrainSummary:
    """One training run, as the register step needs it and people read it: the MLflow run and its model
    (`run_id`, `model_uri`, `model_id`, `experiment_id`, `model_sha256`), the request it answered, the
    rows of each split, the data's hash and hours, the chosen parameters, the holdout metrics of the
    candidate and of the champion (None without one), the search's time and trials, and the tags its
    registered version carries."""

    run_id: str
    model_uri: str
    model_id: str
    experiment_id: str
    request: RetrainRequest
    metrics: dict
    tags: dict
    model_sha256: str | None = None
    rows: dict = field(default_factory=dict)
    data_hash: str = ""
    telemetry_hours: int = 0
    params: dict = field(default_factory=dict)
    champion: dict | None = None
    search_seconds: float = 0.0
    trials: int = 0

    @property
    def run(self) -> dict:
        """The logged run as `log_candidate` returns it (what `register_challenger` registers)."""
        return {"run_id": self.run_id, "model_uri": self.model_uri, "model_id": self.model_id,
                "experiment_id": self.experiment_id, "model_sha256": self.model_sha256}

    def to_dict(self) -> dict:
        return {**self.run, "request": self.request.to_dict(), "rows": dict(self.rows), "data_hash": self.data_hash,
                "telemetry_hours": self.telemetry_hours, "params": dict(self.params), "metrics": dict(self.metrics),
                "champion": self.champion, "search_seconds": self.search_seconds, "trials": self.trials,
                "tags": dict(self.tags)}

    @classmethod
    def from_dict(cls, data: dict) -> "RetrainSummary":
        require(data, SUMMARY_REQUIRED, "the retrain summary", "retrain_model's train_candidate")
        return cls(str(data["run_id"]), data["model_uri"], data["model_id"], str(data["experiment_id"]),
                   RetrainRequest.from_dict(data["request"]), dict(data["metrics"]), dict(data["tags"]),
                   data.get("model_sha256"), dict(data.get("rows") or {}), str(data.get("data_hash") or ""),
                   int(data.get("telemetry_hours") or 0), dict(data.get("params") or {}), data.get("champion"),
                   float(data.get("search_seconds") or 0.0), int(data.get("trials") or 0))


SUMMARY_REQUIRED = ("run_id", "model_uri", "model_id", "experiment_id", "request", "metrics", "tags")


def plan_request(trigger: str, window_days: float, now: datetime, hyperparameters: dict | None = None,
                 search_seconds: float | None = None) -> RetrainRequest:
    """The window of whole hours ending at the last closed hour before `now`, `window_days` long."""
    end = now.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=max(1, round(window_days * 24)))
    fixed = {k: v for k, v in (hyperparameters or {}).items() if v not in (None, "")}
    return RetrainRequest(trigger, start, end, now.astimezone(timezone.utc), fixed, search_seconds)


def regime_request(lake: Lake, contract: Contract, request: RetrainRequest, min_hours: int,
                   now: datetime) -> tuple[RetrainRequest | None, str]:
    """The request a drift-triggered retrain trains on, once the new regime can be learned; else None.

    A retrain asked for because the data or the live accuracy changed must learn the data after the
    change: a window that is mostly the old regime gives a candidate much like the champion, and its
    time-ordered split would keep the new rows for validation and holdout only. So the window starts at
    `regime_since`, and training waits until at least `min_hours` valid hours since then have mature
    labels (every outcome hour up to the label's longest delay offloaded); it then ends after the
    latest such hour. Requests without `regime_since` (calendar, manual) and `min_hours` 0 pass as they
    are. Returns the request (or None) and a line saying where the wait stands."""
    if request.regime_since is None or min_hours <= 0:
        return request, f"window {request.start.isoformat()} .. {request.end.isoformat()}"
    now = now.astimezone(timezone.utc)
    hours = mature_hours(lake, contract, request.regime_since, now.replace(minute=0, second=0, microsecond=0))
    return regime_ready(request, hours, min_hours, now)


def regime_ready(request: RetrainRequest, hours: list[datetime], min_hours: int,
                 now: datetime) -> tuple[RetrainRequest | None, str]:
    """`regime_request`'s rule, pure: given the valid hours since `regime_since` whose labels are all in
    (oldest first), the request to train on now (from `regime_since` to after the latest of them, labels
    as of `now`) once there are `min_hours`, else None; and where the wait stands."""
    if request.regime_since is None or min_hours <= 0:
        return request, f"window {request.start.isoformat()} .. {request.end.isoformat()}"
    status = (f"{len(hours)} of {min_hours} hours since {request.regime_since.isoformat()} have mature labels"
              + (f" (latest {hours[-1].isoformat()})" if hours else ""))
    if len(hours) < min_hours:
        return None, status
    return replace(request, start=request.regime_since, end=hours[-1] + timedelta(hours=1), as_of=now), status


def train_candidate(lake: Lake, contract: Contract, retrain: RetrainSettings, registry: RegistrySettings,
                    request: RetrainRequest) -> RetrainSummary:
    """Build the training set, fit, evaluate the candidate and the champion on the same holdout, log the
    run to `registry`'s server; returns the run's summary with the tags its registered version should
    carry. `retrain` gives the split, the search budget, the threshold, and past how many rows the window
    is streamed from the lake (`stream_rows`) instead of read into one frame."""
    data, candidate = _fit(lake, contract, retrain, request)
    split, result, metrics, threshold = candidate.split, candidate.result, candidate.metrics, candidate.threshold
    incumbent = _evaluate_champion(registry, lake, contract, split.holdout)
    telemetry_hours = [h for h in data.hours if h["topic"] == "telemetry"]
    lineage = {"lake": lake.uri, "window_start": request.start.isoformat(), "window_end": request.end.isoformat(),
               "as_of": request.as_of.isoformat(), "data_hash": data.data_hash, "hours": data.hours,
               "telemetry_hours": len(telemetry_hours), "skipped": data.skipped}
    rows = dict(candidate.rows)
    params = {**result.params, "best_iteration": result.best_iteration, "trigger": request.trigger,
              "window_start": lineage["window_start"], "window_end": lineage["window_end"], "threshold": threshold,
              "trials": len(result.trials), **{f"rows_{k}": v for k, v in rows.items()},
              "train_positives": candidate.train_positives}
    check = split.holdout.iloc[:SCORE_CHECK_ROWS]
    scores = pd.DataFrame({contract.event_id: check[contract.event_id].astype(str).to_numpy(),
                           "score": score(result.booster, contract, check)})
    logged = candidate.logged(incumbent)
    run = log_candidate(registry.tracking_uri, registry.model_name, contract,
                        f"{request.trigger}-{request.as_of:%Y%m%dT%H%M}", result.booster, params, logged, lineage,
                        data.frame, scores, result.trials, incumbent["version"] if incumbent else None,
                        calibration=candidate.calibration)
    tags = version_tags(metrics, incumbent, lineage, contract, threshold, request.trigger)
    log.info("candidate run %s: %s; champion: %s", run["run_id"], _fmt(metrics),
             f"v{incumbent['version']} {_fmt(incumbent['metrics'])}" if incumbent else "none")
    return RetrainSummary(run["run_id"], run["model_uri"], run["model_id"], run["experiment_id"], request, metrics,
                          tags, run["model_sha256"], rows, data.data_hash, len(telemetry_hours), result.params,
                          incumbent, round(result.seconds, 2), len(result.trials))


def _fit(lake: Lake, contract: Contract, retrain: RetrainSettings, request: RetrainRequest):
    """The training set (its lineage, and its rows or, for a streamed window, a sample of them) and the
    candidate: in memory, or streamed hour by hour once the window holds more than `stream_rows` rows."""
    if window_rows(lake, request.start, request.end) <= retrain.stream_rows:
        data = build_training_set(lake, contract, request.start, request.end, request.as_of)
        return data, fit_candidate(contract, data.frame, retrain, request.hyperparameters, request.search_seconds)
    with tempfile.TemporaryDirectory(prefix="continuum-train-") as folder:
        spool = spool_window(lake, contract, request.start, request.end, request.as_of, Path(folder))
        log.info("streaming %d labelled rows of %d hours from the lake", spool.rows, len(spool.files))
        candidate = fit_streamed(contract, spool, retrain, request.hyperparameters, request.search_seconds)
    return TrainingSet(spool.frame, spool.hours, spool.skipped), candidate


def _evaluate_champion(registry: RegistrySettings, lake: Lake, contract: Contract, holdout: pd.DataFrame) -> dict | None:
    """The champion's figures on this holdout, at its own threshold (None when there is no champion yet)."""
    current = champion(MlflowClient(registry.tracking_uri), registry.model_name)
    if current is None:
        return None
    try:
        model, _ = load_trusted(registry.tracking_uri, lake, registry.model_name, current.version)
    except RegistryError as exc:
        raise RegistryError(f"the champion of {registry.model_name} may not serve, so no candidate can be compared "
                            f"with it: {exc}. Roll the alias back (rollback_model), then retrain") from None
    return on_holdout(model.booster, contract, holdout, float(model.tags.get("threshold", DEFAULT_THRESHOLD)),
                      current.version)


def _fmt(metrics: dict) -> str:
    keys = ("holdout_roc_auc", "holdout_pr_auc", "holdout_precision", "holdout_recall")
    return ", ".join(f"{k.removeprefix('holdout_')} {metrics[k]:.4f}" for k in keys)
