"""The registry faults: retrain_model's and promote_model's task functions killed after part of their work
and retried as Airflow retries a task, called in-process against the fault stack's MLflow. What counts:
versions registered twice, aliases moved twice, audit records written twice (all must be 0)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import uuid
from datetime import datetime, timezone
from unittest.mock import patch

import mlflow
from mlflow import MlflowClient

from tests.integration.fault_stack import FaultStack
from tests.integration.fault_stream import Fault
from tests.integration.serving_models import CONTRACT, train_booster


class Killed(RuntimeError):
    """The task's process died here (a worker lost, an out-of-memory kill): nothing after this step ran."""


class MoveLog:
    """Counts every alias move a task reports (its `on_move`) and kills the task, once, right after
    `kill_after` moved."""

    def __init__(self, kill_after: str | None = None) -> None:
        self.kill_after, self.killed = kill_after, False
        self.count: dict[str, int] = {}

    def callback(self, name: str):
        def moved(alias: str, version: str) -> None:
            self.count[alias] = self.count.get(alias, 0) + 1
            if alias == self.kill_after and not self.killed:
                self.killed = True
                raise Killed(f"{name}: the task died after moving {alias} to v{version}")
        return moved


@contextlib.contextmanager
def task_env(env: dict[str, str]):
    """The environment a task's settings are read from (`load_settings` reads it at each call), set key by
    key and put back the same way: the other keys never change, for the faults running beside it."""
    before = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def training_run(name: str) -> dict:
    """A finished training run with its logged model, as train_candidate leaves it (a RetrainSummary)."""
    from ml.train import RetrainSummary, plan_request
    from ml.registry.trust import log_gate_inputs

    booster = train_booster(seed=3)
    experiment = mlflow.set_experiment(name)
    with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
        log_gate_inputs(None, "valid", booster)
        info = mlflow.xgboost.log_model(booster, name="model", model_format="ubj", pip_requirements=["xgboost"])
    digest = hashlib.sha256(bytes(booster.save_raw("ubj"))).hexdigest()
    return RetrainSummary(run.info.run_id, info.model_uri, info.model_id, experiment.experiment_id,
                          plan_request("manual:fault suite", 1.0, datetime.now(timezone.utc)), {},
                          {"threshold": "0.5", "contract": CONTRACT.name}, model_sha256=digest).to_dict()


def register_retried(stack: FaultStack) -> Fault:
    """retrain_model's register task dies right after MLflow made the version (before its digest tag and
    `challenger`), is retried, and is retried once more after it finished (a worker lost before it
    reported success)."""
    from ml.train import track
    from plugins.tasks.retrain import register

    name = f"faults-retrain-{uuid.uuid4().hex[:8]}"
    summary = training_run(name)
    challenger_moves, killed = [], []
    real_alias, real_digest = MlflowClient.set_registered_model_alias, track.record_digest

    def set_alias(client, model, alias, version):
        challenger_moves.append(version) if alias == "challenger" else None
        return real_alias(client, model, alias, version)

    def digest_then(*args):
        if not killed:
            killed.append(time.monotonic())
            raise Killed(f"{name}: the task died after MLflow made the version")
        return real_digest(*args)

    with task_env({**stack.client_env(), "CONTINUUM_MODEL_NAME": name}), \
            patch.object(MlflowClient, "set_registered_model_alias", set_alias), \
            patch.object(track, "record_digest", digest_then):
        try:
            register(summary)
        except Killed:
            pass
        first = register(summary)
        done = time.monotonic()
        again = register(summary)
    client = MlflowClient(stack.mlflow_uri)
    versions = client.search_model_versions(f"name='{name}' and run_id='{summary['run_id']}'")
    tags = client.get_model_version(name, first["version"]).tags
    challenger = client.get_model_version_by_alias(name, "challenger").version
    twice = max(0, len(versions) - 1) + max(0, len(challenger_moves) - 1)
    whole = bool(killed) and again == first and challenger == first["version"] and "model_sha256" in tags
    return Fault("retrain_model_retried", 0 if versions else 1, twice, 0, done - killed[0] if killed else None,
                 whole and not twice and bool(versions),
                 {"versions_of_run": len(versions), "challenger_moves": len(challenger_moves),
                  "challenger": challenger, "digest_tagged": "model_sha256" in tags})
