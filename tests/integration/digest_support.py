"""Versions registered the way retrain_model registers them (so their digest is tagged), and their model
files changed in the MLflow server's artifact store behind the registry's back, as anyone with write
access to the store could."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import yaml

from tests.integration.serving_models import _experiment, holdout_metrics, judge, train_booster
from tooling.local_dir import LOCAL

# the local stack's `mlflow server --artifacts-destination` (docker/local/services/mlflow.py)
ARTIFACT_STORE = Path(os.environ.get("CONTINUUM_TEST_MLFLOW_ARTIFACTS", LOCAL / "mlflow" / "artifacts"))
STORE_PREFIX = "mlflow-artifacts:/"


def register_tagged(client, name: str, lake, booster=None, approve: bool = True) -> str:
    """Log a booster with the gate inputs training logs, register it through `register_challenger`
    (which tags the digest of the registered file), judge it and, unless not, approve it as a person
    does (verdict and tags)."""
    import mlflow
    import mlflow.xgboost

    from ml.registry.approval import APPROVED, MANUAL, decide
    from ml.registry.trust import log_gate_inputs
    from ml.train import register_challenger

    booster = booster if booster is not None else train_booster()
    mlflow.set_tracking_uri(client.tracking_uri)
    with mlflow.start_run(experiment_id=_experiment(client)) as run:
        mlflow.log_metrics(holdout_metrics(booster))
        digest = log_gate_inputs(None, "valid", booster)
        info = mlflow.xgboost.log_model(booster, name="model", model_format="ubj", pip_requirements=["xgboost"])
    version = register_challenger(client.tracking_uri, name, {"run_id": run.info.run_id, "model_uri": info.model_uri,
                                                              "model_id": info.model_id, "model_sha256": digest}, {})
    judge(client, name, version, lake, approve=False)
    if approve:
        decide(client, lake, name, version, APPROVED, "test", MANUAL, "approved by the test")
    return version


def stored_model_file(client, name: str, version: str) -> Path:
    """A version's model file where the MLflow server keeps it (not a downloaded copy)."""
    uri = client.get_model_version_download_uri(name, version)
    if not uri.startswith(STORE_PREFIX):
        pytest.fail(f"{name} v{version} is stored at {uri}, not in the local server's store ({STORE_PREFIX})")
    folder = ARTIFACT_STORE / uri.removeprefix(STORE_PREFIX)
    if not folder.is_dir():
        pytest.fail(f"no folder {folder}: set CONTINUUM_TEST_MLFLOW_ARTIFACTS to the server's --artifacts-destination")
    spec = yaml.safe_load((folder / "MLmodel").read_text())
    return folder / spec["flavors"]["xgboost"]["data"]


def overwrite_model(client, name: str, version: str, data: bytes) -> str:
    """Replace a version's model file in the store with `data`; returns the SHA-256 of what is there now."""
    path = stored_model_file(client, name, version)
    path.write_bytes(data)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def other_model(seed: int) -> bytes:
    """The UBJ bytes of a different, valid model: a swap an attacker would want to go unnoticed."""
    return bytes(train_booster(seed=seed).save_raw("ubj"))
