"""The served model: a native XGBoost booster from the registry, checked before it may serve.

`load_version` fetches one registered version (`models:/<name>/<version>`, XGBoost's own format, never
a pickle) with its decision threshold; `check_model` runs it on a canned batch built from the contract,
so a version that loads but cannot score this contract's features is refused before it serves a single
event. `predict` is the one scoring call of both the stream and `POST /predict`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.contract import Contract, model_frame
from ml.contract.model import CATEGORICAL

DEFAULT_THRESHOLD = 0.5


class ModelRefused(RuntimeError):
    """A version could not be loaded or failed its check; the message says why."""


@dataclass(frozen=True)
class ServingModel:
    """One loaded version: its booster and the score at or above which an event is an alert."""

    name: str
    version: str
    booster: object  # xgboost.Booster
    threshold: float = DEFAULT_THRESHOLD

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Failure probability of each row of `model_frame(contract, df)`."""
        if not len(features):
            return np.empty(0, dtype=np.float64)
        return np.asarray(self.booster.inplace_predict(features), dtype=np.float64).reshape(len(features))


def alias_version(client, name: str, alias: str) -> str | None:
    """The version an alias points at, or None when the model or the alias does not exist yet."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.get_error_code() in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def load_version(client, name: str, version: str) -> ServingModel:
    """Load a registered version as a native booster; ModelRefused if it is not a usable XGBoost model."""
    import mlflow.xgboost

    try:
        tags = client.get_model_version(name, version).tags or {}
        threshold = float(tags.get("threshold", DEFAULT_THRESHOLD))
        booster = mlflow.xgboost.load_model(f"models:/{name}/{version}")
    except Exception as exc:  # any failure to fetch or parse means this version cannot serve
        raise ModelRefused(f"{name} v{version} failed to load: {type(exc).__name__}: {exc}") from None
    if not 0.0 < threshold < 1.0:
        raise ModelRefused(f"{name} v{version}: tag threshold={threshold} is not in (0, 1)")
    if not hasattr(booster, "inplace_predict"):
        raise ModelRefused(f"{name} v{version} is a {type(booster).__name__}, not a native xgboost Booster")
    return ServingModel(name, str(version), booster, threshold)


def canned_frame(contract: Contract, rows: int = 16) -> pd.DataFrame:
    """A small deterministic batch inside the contract's ranges, for checking a model before it serves."""
    data: dict[str, list] = {}
    for feat in contract.features:
        if feat.kind == CATEGORICAL:
            data[feat.name] = [feat.allowed[i % len(feat.allowed)] for i in range(rows)]
        else:
            lo = feat.min if feat.min is not None else 0.0
            hi = feat.max if feat.max is not None else lo + 1.0
            data[feat.name] = np.linspace(lo, hi, rows).tolist()
    return model_frame(contract, pd.DataFrame(data))


def check_model(model: ServingModel, contract: Contract) -> None:
    """ModelRefused unless the model reads exactly the contract's columns and scores the canned batch
    with one probability in [0, 1] per row."""
    names = getattr(model.booster, "feature_names", None)
    if names is not None and list(names) != contract.model_columns:
        raise ModelRefused(f"{model.name} v{model.version} expects features {list(names)}, "
                           f"the contract gives {contract.model_columns}")
    frame = canned_frame(contract)
    try:
        scores = model.predict(frame)
    except Exception as exc:  # the booster rejects the contract's frame
        raise ModelRefused(f"{model.name} v{model.version} cannot score the canned batch: {exc}") from None
    if scores.shape != (len(frame),) or not np.all(np.isfinite(scores)) or scores.min() < 0 or scores.max() > 1:
        raise ModelRefused(f"{model.name} v{model.version} gave scores outside [0, 1] on the canned batch")
