"""The served model: a native XGBoost booster from the registry, checked before it may serve.

`load_version` fetches one registered version (XGBoost's own format, read as data, never a pickle) with
its decision threshold, once its verdict in the lake says these bytes passed the gates and were
approved; `check_model` runs it on a canned batch built from the contract, so a version that loads but
cannot score this contract's features is refused before it serves a single event. `predict` is the one scoring call of both the stream and `POST /predict`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ml.contract import Contract, model_frame
from ml.contract.model import CATEGORICAL


class ModelRefused(RuntimeError):
    """A version could not be loaded or failed its check; the message says why. `evidence` holds the
    digests and artifact URI when its model file is not the one registered (else it is empty)."""

    def __init__(self, message: str, evidence: dict | None = None) -> None:
        super().__init__(message)
        self.evidence = evidence or {}


class ModelUnavailable(RuntimeError):
    """A version could not be asked about: the registry, its artifact store or the lake did not answer.
    Not a verdict on the version: it is tried again at the next look, and nobody is paged."""


@dataclass(frozen=True)
class ServingModel:
    """One loaded version: its booster and the score at or above which an event is an alert."""

    name: str
    version: str
    booster: object  # xgboost.Booster
    threshold: float  # stated by every maker (no default here: the registry's is imported with MLflow)
    as_codes: bool = False  # checked: the booster scores category codes exactly as the categorical frame

    def predict(self, features: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Failure probability of each row of `model_frame(contract, df)`, or of `model_matrix` (categories
        as codes: only for a version whose check found codes and categories score the same)."""
        if not len(features):
            return np.empty(0, dtype=np.float64)
        if isinstance(features, np.ndarray) and not self.as_codes:
            raise ValueError(f"version {self.version} takes a model frame, not category codes")
        data = as_codes(features) if self.as_codes and not isinstance(features, np.ndarray) else features
        return np.asarray(self.booster.inplace_predict(data), dtype=np.float64).reshape(len(features))


def as_codes(features: pd.DataFrame) -> np.ndarray:
    """The model frame as one float32 matrix, categoricals as their fixed contract codes (NaN if unknown).
    XGBoost's pandas conversion costs milliseconds per call whatever the size; this costs microseconds."""
    out = np.empty((len(features), features.shape[1]), dtype=np.float32)
    for j, (_, col) in enumerate(features.items()):
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = col.cat.codes.to_numpy()
            out[:, j] = np.where(codes < 0, np.nan, codes)
        else:
            out[:, j] = col.to_numpy()
    return out


def alias_version(client, name: str, alias: str) -> str | None:
    """The version an alias points at, or None when the model or the alias does not exist yet."""
    from ml.registry import by_alias

    found = by_alias(client, name, alias)
    return None if found is None else str(found.version)


def load_version(tracking_uri: str, name: str, version: str, lake, approved: bool = True) -> ServingModel:
    """Load a registered version as a native booster, through the one loader, once the lake's verdict
    says it may serve these exact bytes (passed and approved; a shadow needs no approval);
    ModelRefused with the reason otherwise, ModelUnavailable when the registry or the lake did not answer."""
    from ml.registry.trust import load_trusted
    from ml.registry.versions import DEFAULT_THRESHOLD, unreachable

    try:
        model, _ = load_trusted(tracking_uri, lake, name, version, approved)
    except Exception as exc:  # any other failure to fetch, verify or parse means this version cannot serve
        if unreachable(exc):
            raise ModelUnavailable(f"{name} v{version} could not be fetched or verified now: {type(exc).__name__}: "
                                   f"{str(exc)[:400]}") from exc
        raise ModelRefused(f"{name} v{version} failed to load: {type(exc).__name__}: {str(exc)[:400]}",
                           getattr(exc, "evidence", None)) from None
    threshold = float(model.tags.get("threshold", DEFAULT_THRESHOLD))
    if not 0.0 < threshold < 1.0:
        raise ModelRefused(f"{name} v{version}: tag threshold={threshold} is not in (0, 1)")
    booster = model.booster
    booster.set_param({"nthread": 1})  # one core per sidecar: scale out with replicas and partitions
    return ServingModel(name, str(version), booster, threshold)


def canned_frame(contract: Contract, rows: int = 64) -> pd.DataFrame:
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


def check_model(model: ServingModel, contract: Contract) -> ServingModel:
    """ModelRefused unless the model reads exactly the contract's columns and scores the canned batch
    with one probability in [0, 1] per row; returns the model ready to serve."""
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
    return fast_path(model, frame, scores)


def fast_path(model: ServingModel, frame: pd.DataFrame, scores: np.ndarray) -> ServingModel:
    """The model scoring category codes directly when that gives exactly the same scores on the canned
    batch (it does when it was trained on the contract's fixed categories), else the model as it was."""
    coded = replace(model, as_codes=True)
    try:
        same = np.array_equal(coded.predict(frame), scores)
    except Exception:  # the booster does not take a plain matrix
        same = False
    return coded if same else model
