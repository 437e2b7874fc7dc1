"""Retried registry steps against the real MLflow server and the real lake (local and S3): a training
run registers one version however often its step runs, and a champion move cut short at any step
converges on a retry to one move, `previous` on the real previous champion, and one audit record."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timezone

import mlflow
import pytest
import xgboost as xgb
from mlflow import MlflowClient

from ml.contract import load_contract, model_frame
from ml.lake.layout import verdict_key
from ml.registry import APPROVAL, APPROVED, audit_log, by_alias, champion, record_approval, set_champion
from ml.registry.approval import MANUAL
from ml.simulate.stream import SimConfig, Simulator
from ml.train import RetrainSummary, plan_request
from tests.integration.conftest import S3_ENDPOINT

CONTRACT = load_contract("machine_telemetry")


class Stop(RuntimeError):
    """The failure a test injects between two steps."""


@pytest.fixture
def model(mlflow_uri, monkeypatch):
    """A fresh registered-model name, the deployment's settings pointing at it, and `run()`: a new
    finished training run of one small logged model, as train_candidate summarises it."""
    name = f"test-mf-{uuid.uuid4().hex[:8]}"
    df = Simulator(CONTRACT, SimConfig(devices=5, rate=1.0, seed=4)).frame(0, 600_000)
    X = model_frame(CONTRACT, df)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2},
                        xgb.DMatrix(X, df["failure"], enable_categorical=True), 3)
    mlflow.set_tracking_uri(mlflow_uri)
    experiment = mlflow.set_experiment(name)
    with mlflow.start_run(experiment_id=experiment.experiment_id):
        info = mlflow.xgboost.log_model(booster, name="model", model_format="ubj")
    digest = hashlib.sha256(bytes(booster.save_raw("ubj"))).hexdigest()
    monkeypatch.setenv("CONTINUUM_MODEL_NAME", name)
    monkeypatch.setenv("CONTINUUM_MLFLOW_TRACKING_URI", mlflow_uri)
    client = MlflowClient(mlflow_uri)

    def run() -> dict:
        active = client.create_run(experiment.experiment_id)
        client.log_param(active.info.run_id, "model_sha256", digest)  # as training logs it (log_gate_inputs)
        client.set_terminated(active.info.run_id)
        return RetrainSummary(active.info.run_id, info.model_uri, info.model_id, experiment.experiment_id,
                              plan_request("manual:test", 1.0, datetime.now(timezone.utc)), {},
                              {"threshold": "0.5", "contract": CONTRACT.name}).to_dict()

    return client, name, run


def versions_of(client: MlflowClient, name: str, run_id: str) -> set[str]:
    return {mv.version for mv in client.search_model_versions(f"name='{name}' and run_id='{run_id}'")}


def test_a_retried_registration_returns_the_same_version_and_changes_nothing(model):
    from plugins.tasks.retrain import register

    client, name, run = model
    summary = run()
    first = register(summary)
    client.set_model_version_tag(name, first["version"], APPROVAL, APPROVED)  # decided before the retry
    again = register(summary)  # the task failed after registering; Airflow runs it again
    assert again == first and versions_of(client, name, summary["run_id"]) == {first["version"]}
    assert client.get_model_version(name, first["version"]).tags[APPROVAL] == APPROVED, "no tag is reset"
    assert by_alias(client, name, "challenger").version == first["version"]

    newer = register(run())
    assert register(summary)["version"] == first["version"]
    assert by_alias(client, name, "challenger").version == newer["version"], "an older run never takes it back"


def test_a_registration_cut_before_the_alias_is_finished_by_the_retry(model):
    from plugins.tasks.retrain import register

    client, name, run = model
    summary = run()
    client.create_registered_model(name)
    made = client.create_model_version(name, summary["model_uri"], summary["run_id"], model_id=summary["model_id"],
                                       tags={**summary["tags"], APPROVAL: "pending"})  # then the task died
    assert register(summary)["version"] == made.version
    assert versions_of(client, name, summary["run_id"]) == {made.version}
    assert by_alias(client, name, "challenger").version == made.version


def moves_to(lake, name: str, version: str) -> list[dict]:
    return [r for r in audit_log(lake) if r["model"] == name and r["to"] == version]


@pytest.mark.parametrize("cut_after", ["previous", "champion"])
def test_a_move_cut_between_alias_moves_converges_on_a_retry(model, lake, cut_after):
    client, name, run = model
    register_three(client, name, run)
    set_champion(client, name, "1", "alice", "first", lake)
    set_champion(client, name, "2", "alice", "second", lake)

    def fail(alias: str, version: str) -> None:
        if alias == cut_after:
            raise Stop(f"{alias} moved to v{version}, then the task died")

    with pytest.raises(Stop):
        set_champion(client, name, "3", "bob", "third", lake, on_move=fail)
    record = set_champion(client, name, "3", "bob", "third", lake)
    assert (champion(client, name).version, by_alias(client, name, "previous").version) == ("3", "2")
    assert (record["from"], record["to"]) == ("2", "3") and moves_to(lake, name, "3") == [record]
    assert set_champion(client, name, "3", "bob", "third", lake) == record, "a third run changes nothing"
    assert [(r["from"], r["to"]) for r in audit_log(lake) if r["model"] == name] == [(None, "1"), ("1", "2"),
                                                                                     ("2", "3")]


def test_a_promotion_whose_audit_write_failed_is_audited_once_by_the_retry(model, lake, monkeypatch):
    """The lake refuses the audit write after `champion` moved; the retried promote_champion task records
    the move once, from the real previous champion, naming the approver, and announces that."""
    from ml.registry import aliases
    from plugins.tasks.promotion import promote

    client, name, run = model
    monkeypatch.setenv("CONTINUUM_LAKE_URI", lake.uri)
    if lake.is_s3:
        monkeypatch.setenv("CONTINUUM_S3_ENDPOINT_URL", S3_ENDPOINT)
    register_three(client, name, run)
    for version in ("1", "2"):
        approve(client, lake, name, version, "alice")
    assert promote("1")["to"] == "1"

    def refused(lake, record):
        raise OSError("the lake refused the write")

    with monkeypatch.context() as patch:
        patch.setattr(aliases, "write_record", refused)
        with pytest.raises(OSError):
            promote("2")
    assert champion(client, name).version == "2" and not moves_to(lake, name, "2")

    record = promote("2")  # the lake is back; Airflow retries the task
    assert (record["from"], record["to"], record["actor"]) == ("1", "2", "alice")
    assert moves_to(lake, name, "2") == [record] and by_alias(client, name, "previous").version == "1"
    assert promote("2") == record and len([r for r in audit_log(lake) if r["model"] == name]) == 2


def register_three(client: MlflowClient, name: str, run) -> None:
    from plugins.tasks.retrain import register

    for expected in ("1", "2", "3"):
        assert register(run())["version"] == expected


def approve(client: MlflowClient, lake, name: str, version: str, by: str) -> None:
    """A passed verdict for the version's registered bytes in the lake, approved by `by` as a person
    approves in Airflow (promote_model's gates need logged metrics these small runs do not have)."""
    digest = client.get_run(client.get_model_version(name, version).run_id).data.params["model_sha256"]
    lake.write_text(verdict_key(name, version), json.dumps({"model": name, "version": version, "digest": digest,
                                                            "passed": True, "gates": [], "approval": None}))
    record_approval(lake, name, version, APPROVED, by, MANUAL, "approved by the test")
