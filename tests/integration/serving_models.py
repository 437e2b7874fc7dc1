"""Registered models for the serving tests and bench/serving.py: a tiny XGBoost model trained on
simulated events, logged and registered with the inputs promote_model's gates read, and judged (and
approved) the way promote_model does, so a sidecar may serve it."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from ml.contract import load_contract, model_frame
from ml.simulate import SimConfig, Simulator

CONTRACT = load_contract("machine_telemetry")
DAY = 86_400_000
START_MS = 1_795_000_000_000  # a fixed past day: replays are reproducible


def train_booster(seed: int = 0, rounds: int = 8, events: int = 4000):
    """A small XGBoost model on simulated events, trained the way ml/train does: model_frame, categorical."""
    import xgboost as xgb

    sim = Simulator(CONTRACT, SimConfig(devices=50, rate=events / 3600, seed=seed))
    frame = sim.frame(START_MS, START_MS + 3_600_000)
    dtrain = xgb.DMatrix(model_frame(CONTRACT, frame), label=frame[CONTRACT.label.field], enable_categorical=True)
    return xgb.train({"objective": "binary:logistic", "max_depth": 4, "eta": 0.3, "seed": seed}, dtrain, rounds)


def two_versions(ctx: dict) -> tuple[str, str]:
    """Two different versions of a serving test's model (`serving_env`), each judged to serve."""
    return (register(ctx["client"], ctx["name"], train_booster(seed=1), lake=ctx["lake"]),
            register(ctx["client"], ctx["name"], train_booster(seed=2, rounds=12), lake=ctx["lake"]))


def register(client, name: str, booster=None, threshold: float | None = None, corrupt: bool = False,
             lake=None, approve: bool = True, in_run: bool = False, metrics: dict | None = None) -> str:
    """Log a booster with the gate inputs training logs (or, with corrupt, a model whose ubj file is
    garbage) and register it as a new version; with a lake, judge it as promote_model does and, unless
    approve is false, approve it, so it may serve. With in_run (and corrupt) the model's files are the
    run's artifacts under `model/`, which a later `client.log_artifact` can overwrite. `metrics` replace
    the measured holdout figures (a test injecting a model that passes the gates)."""
    import mlflow
    import mlflow.xgboost

    from ml.registry.trust import log_gate_inputs

    booster = booster if booster is not None else train_booster()
    with mlflow.start_run(experiment_id=_experiment(client)) as run:
        mlflow.log_metrics({**holdout_metrics(booster), **(metrics or {})})
        log_gate_inputs(None, "valid", booster)
        if corrupt or in_run:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "model"
                mlflow.xgboost.save_model(booster, str(path), model_format="ubj", pip_requirements=["xgboost"])
                if corrupt:
                    (path / "model.ubj").write_bytes(b"this is not an xgboost model" * 10)
                mlflow.log_artifacts(str(path), "model")
            version = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id).version
        else:
            info = mlflow.xgboost.log_model(booster, name="model", model_format="ubj", registered_model_name=name,
                                            pip_requirements=["xgboost"])
            version = info.registered_model_version
    if threshold is not None:
        client.set_model_version_tag(name, str(version), "threshold", str(threshold))
    if lake is not None:
        judge(client, name, str(version), lake, approve)
    return str(version)


def holdout_metrics(booster) -> dict[str, float]:
    """The figures training logs for a candidate, on a simulated hour the test boosters never saw."""
    from ml.evaluate import evaluate

    holdout = Simulator(CONTRACT, SimConfig(devices=50, rate=2000 / 3600, seed=99)).frame(START_MS + DAY,
                                                                                         START_MS + DAY + 3_600_000)
    return evaluate(booster, CONTRACT, holdout, 0.5)


def judge(client, name: str, version: str, lake, approve: bool = True) -> dict:
    """The verdict of promote_model's gates on a version (policy manual), approved by "test" unless not."""
    from ml.registry import champion
    from ml.registry.approval import MANUAL
    from ml.registry.trust import judge_version, record_approval
    from ml.settings import load_settings

    settings = load_settings(approval_policy="manual")
    current = champion(client, name)
    record = judge_version(client.tracking_uri, lake, name, version, settings.gates,
                           current.version if current else None)
    assert record["passed"], record["gates"]
    if approve:
        record = record_approval(lake, name, version, "approved", "test", MANUAL, "approved by the test")
    return record


def _experiment(client) -> str:
    found = client.get_experiment_by_name("continuum-tests")
    return found.experiment_id if found else client.create_experiment("continuum-tests")


def new_model(client) -> str:
    name = f"test-serve-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    return name
