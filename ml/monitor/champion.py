"""What monitoring needs to know about the champion: its version, threshold, holdout AUC, the end of its
training window (its age, in event time), the reference sample it was trained on and what it leans on."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient

from ml.registry import champion, load_version
from ml.train.track import REFERENCE_ARTIFACT


@dataclass(frozen=True)
class ChampionInfo:
    version: str
    run_id: str
    threshold: float
    holdout_roc_auc: float | None
    trained_until: datetime | None
    importances: dict[str, float] = field(default_factory=dict)

    def age_hours(self, now: datetime) -> float | None:
        """Hours from the end of the training window to `now` (event time: backfills age the model too)."""
        if self.trained_until is None:
            return None
        return max(0.0, (now - self.trained_until).total_seconds() / 3600)

    def to_dict(self) -> dict:
        return {"version": self.version, "run_id": self.run_id, "threshold": self.threshold,
                "holdout_roc_auc": self.holdout_roc_auc,
                "trained_until": self.trained_until.isoformat() if self.trained_until else None}


def champion_info(tracking_uri: str, model_name: str) -> ChampionInfo | None:
    """The current champion's facts, or None before the first promotion."""
    client = MlflowClient(tracking_uri)
    mv = champion(client, model_name)
    if mv is None:
        return None
    booster, threshold, tags = load_version(tracking_uri, model_name, mv.version)
    auc = tags.get("holdout_roc_auc")
    until = tags.get("window_end")
    gains = booster.get_score(importance_type="gain")
    total = sum(gains.values()) or 1.0
    return ChampionInfo(version=str(mv.version), run_id=mv.run_id, threshold=float(threshold),
                        holdout_roc_auc=float(auc) if auc else None,
                        trained_until=datetime.fromisoformat(until) if until else None,
                        importances={k: v / total for k, v in gains.items()})


def reference_sample(tracking_uri: str, run_id: str) -> pd.DataFrame:
    """The training reference sample logged with the champion's run (`reference/reference.parquet`)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=REFERENCE_ARTIFACT,
                                                   dst_path=tmp, tracking_uri=tracking_uri)
        return pd.read_parquet(Path(path))
