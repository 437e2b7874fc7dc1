"""What monitoring needs to know about the champion: its version, threshold, holdout AUC, the end of its
training window (its age, in event time), the reference sample it was trained on, what it leans on, and
its scores' calibration (to estimate its figures before labels arrive)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ml.lake import Lake
from ml.registry import RegistryError, champion
from ml.registry.trust import load_trusted
from ml.registry.versions import DEFAULT_THRESHOLD
from ml.train.track import CALIBRATION_ARTIFACT, REFERENCE_ARTIFACT


@dataclass(frozen=True)
class ChampionInfo:
    version: str
    run_id: str
    threshold: float
    holdout_roc_auc: float | None
    trained_until: datetime | None
    importances: dict[str, float] = field(default_factory=dict)
    calibration: dict | None = None  # None: trained before calibrations were recorded

    def age_hours(self, now: datetime) -> float | None:
        """Hours from the end of the training window to `now` (event time: backfills age the model too)."""
        if self.trained_until is None:
            return None
        return max(0.0, (now - self.trained_until).total_seconds() / 3600)

    def to_dict(self) -> dict:
        return {"version": self.version, "run_id": self.run_id, "threshold": self.threshold,
                "holdout_roc_auc": self.holdout_roc_auc,
                "trained_until": self.trained_until.isoformat() if self.trained_until else None}


def champion_info(tracking_uri: str, model_name: str, lake: Lake) -> ChampionInfo | None:
    """The current champion's facts, or None before the first promotion.

    The champion is loaded and verified as the sidecar loads it (`load_trusted`): a champion alias moved
    to a version that may not serve fails here with the reason, rather than monitoring a model that is
    not the one serving. Its holdout AUC is the one its verdict judged, its age the training window its
    run logged; neither comes from an editable tag."""
    client = MlflowClient(tracking_uri)
    mv = champion(client, model_name)
    if mv is None:
        return None
    try:
        model, verdict = load_trusted(tracking_uri, lake, model_name, mv.version)
    except RegistryError as exc:
        raise RegistryError(f"the champion of {model_name} may not serve, so it cannot be monitored: {exc}. "
                            "Roll the alias back (rollback_model) to the version the sidecars serve") from None
    auc = verdict["inputs"]["metrics"].get("holdout_roc_auc")
    until = client.get_run(mv.run_id).data.params.get("window_end") if mv.run_id else None
    gains = model.booster.get_score(importance_type="gain")
    total = sum(gains.values()) or 1.0
    return ChampionInfo(version=str(mv.version), run_id=mv.run_id,
                        threshold=float(model.tags.get("threshold", DEFAULT_THRESHOLD)),
                        holdout_roc_auc=float(auc) if auc is not None else None,
                        trained_until=datetime.fromisoformat(until) if until else None,
                        importances={k: v / total for k, v in gains.items()},
                        calibration=calibration(tracking_uri, mv.run_id) if mv.run_id else None)


def calibration(tracking_uri: str, run_id: str) -> dict | None:
    """The calibration logged with a training run (`calibration/isotonic.json`), or None when it has none."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=CALIBRATION_ARTIFACT, dst_path=tmp,
                                                       tracking_uri=tracking_uri)
        except (MlflowException, OSError):
            return None
        return json.loads(Path(path).read_text())


def reference_sample(tracking_uri: str, run_id: str) -> pd.DataFrame:
    """The training reference sample logged with the champion's run (`reference/reference.parquet`)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=REFERENCE_ARTIFACT,
                                                   dst_path=tmp, tracking_uri=tracking_uri)
        return pd.read_parquet(Path(path))
