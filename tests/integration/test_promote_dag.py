"""promote_model and rollback_model run by the real Airflow task runner against the real MLflow server,
the real broker (control topic) and a real lake: first model, better, worse, an approver's approval in
Airflow, timeout, rollback."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import datetime, timezone

import pytest
from airflow.sdk.exceptions import AirflowSkipException
from confluent_kafka import Consumer
from mlflow import MlflowClient

from ml.registry import audit_log, by_alias, champion, read_verdict
from ml.settings import load_settings
from ml.train import plan_request, register_challenger, train_candidate
from plugins.tasks.promotion import promote
from tests.integration.alert_support import use_webhook, webhook  # noqa: F401
from tests.integration.hitl_support import answer, open_request
from tests.integration.training_data import CONTRACT, airflow_db, run_dag, xcom  # noqa: F401

WEAK = {"max_depth": 1, "learning_rate": 0.01, "colsample_bytree": 0.8}


@pytest.fixture
def env(mlflow_uri, kafka_bootstrap, training_lake, topic_factory, monkeypatch, airflow_db):
    """A model name, experiment and control topic of this test's own, through the deployment's settings."""
    control = topic_factory("control")
    for var, value in {"MODEL_NAME": f"test-mf-{uuid.uuid4().hex[:8]}", "LAKE_URI": training_lake.uri,
                       "TOPIC_CONTROL": control, "RETRAIN_SEARCH_SECONDS": "1", "RETRAIN_MAX_ROUNDS": "60",
                       "PROMOTION_FLOOR": "0.6"}.items():
        monkeypatch.setenv(f"CONTINUUM_{var}", value)
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT",
                       json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": kafka_bootstrap}}))
    return load_settings()


def candidate(lake, hyperparameters: dict | None = None) -> str:
    """Train and register a challenger the way retrain_model does; returns its version."""
    settings = load_settings()
    request = plan_request("manual:test", 1.0, datetime.now(timezone.utc), hyperparameters)
    summary = train_candidate(lake, CONTRACT, settings.retrain, settings.registry, request)
    return register_challenger(settings.mlflow_tracking_uri, settings.model_name, summary.run, summary.tags)


def control_messages(settings) -> list[dict]:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"t-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([settings.topic_control])
    out, deadline = [], time.monotonic() + 15
    while time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is not None and not msg.error():
            assert msg.key() == settings.model_name.encode()
            out.append(json.loads(msg.value()))
        elif out:
            break
    consumer.close()
    return out


def _alerts(webhook, name: str) -> list[dict]:
    return [b["json"] for b in webhook.bodies if b["json"].get("subject") == name]


def test_first_model_promoted_then_a_better_one_a_worse_one_refused_and_a_rollback(env, training_lake, webhook,
                                                                                    monkeypatch, tmp_path):
    use_webhook(monkeypatch, webhook.url)
    monkeypatch.setenv("CONTINUUM_ALERT_STATE_PATH", str(tmp_path / "alerts.json"))
    client, name = MlflowClient(env.mlflow_tracking_uri), env.model_name
    first = candidate(training_lake, WEAK)
    run, states = run_dag("promote_model")
    assert run.state == "success", states
    assert champion(client, name).version == first and by_alias(client, name, "previous") is None
    tags = client.get_model_version(name, first).tags
    assert (tags["approval"], tags["approved_by"]) == ("approved", "policy:auto")
    assert tags["gate_metric"].startswith("pass: no champion")
    verdict = read_verdict(training_lake, name, first)  # what sidecars trust: the run's digest, approved
    assert verdict["passed"] and verdict["approval"]["by"] == "policy:auto" and verdict["approval"]["how"] == "auto"
    assert verdict["digest"] == client.get_run(verdict["run_id"]).data.params["model_sha256"]

    better = candidate(training_lake)
    run, states = run_dag("promote_model")
    assert run.state == "success", states
    assert champion(client, name).version == better and by_alias(client, name, "previous").version == first
    assert by_alias(client, name, "challenger") is None

    worse = candidate(training_lake, WEAK)
    run, states = run_dag("promote_model")
    assert states["promote_champion"] == "skipped" and states["announce_promotion"] == "skipped", states
    evidence = xcom(run, "check_gates")
    assert evidence["decision"] == "rejected" and evidence["failed"] == ["metric"]
    tags = client.get_model_version(name, worse).tags
    assert (tags["approval"], tags["approved_by"]) == ("rejected", "gates") and tags["gate_metric"].startswith("fail")
    assert champion(client, name).version == better

    run, states = run_dag("rollback_model", {"reason": "bad alerts in plant-b"})
    assert run.state == "success", states
    assert champion(client, name).version == first and by_alias(client, name, "previous").version == better

    trail = [r for r in audit_log(training_lake) if r["model"] == name]
    assert [(r["type"], r["from"], r["to"]) for r in trail] == [
        ("promotion", None, first), ("promotion", first, better), ("rollback", better, first)]
    assert trail[-1]["reason"] == "bad alerts in plant-b" and trail[-1]["actor"]
    sent = control_messages(env)
    assert [(m["type"], m["version"], m["previous"]) for m in sent] == [
        ("promotion", first, None), ("promotion", better, first), ("rollback", first, better)]
    assert all(m["model"] == name and m["alias"] == "champion" for m in sent)
    kinds = [a["kind"] for a in _alerts(webhook, name)]
    assert kinds == ["promoted", "promoted", "model_refused", "rolled_back"], kinds
    refused = _alerts(webhook, name)[2]
    assert refused["title"] == f"{name} v{worse} kept out: not better than champion v{better}"
    assert refused["severity"] == "info" and "holdout_roc_auc" in refused["reason"] and refused["evidence"]["version_url"]


def test_manual_policy_waits_for_an_approver_in_airflow_and_the_audit_names_who(env, training_lake, monkeypatch,
                                                                                 webhook, tmp_path):
    """Only an approver's answer counts: the pipeline's account and Airflow's admin are refused by Airflow,
    an approval tag set in MLflow decides nothing, and the move is recorded with the approver's login."""
    monkeypatch.setenv("CONTINUUM_APPROVAL_POLICY", "manual")
    use_webhook(monkeypatch, webhook.url)
    monkeypatch.setenv("CONTINUUM_ALERT_STATE_PATH", str(tmp_path / "alerts.json"))
    client, name = MlflowClient(env.mlflow_tracking_uri), env.model_name
    version = candidate(training_lake)
    statuses: list[tuple[str, int]] = []

    def people():  # while the task waits: a tag in MLflow, two refused answers, then the approver's
        request = open_request(name)
        client.set_model_version_tag(name, version, "approved_by", "mallory")
        client.set_model_version_tag(name, version, "approval", "approved")
        for user in ("pipeline", "admin", "approver"):
            statuses.append((user, answer(request, user, "Approve", "beats the champion")))

    person = threading.Thread(target=people)
    person.start()
    run, states = run_dag("promote_model")
    person.join()
    assert statuses == [("pipeline", 403), ("admin", 403), ("approver", 200)]
    assert run.state == "success", states
    assert xcom(run, "check_gates")["decision"] == "pending"
    assert xcom(run, "wait_for_approval") == {"version": version, "approval": "approved", "by": "approver"}
    assert champion(client, name).version == version
    record = [r for r in audit_log(training_lake) if r["model"] == name][-1]
    assert record["actor"] == "approver" and record["to"] == version
    approval = read_verdict(training_lake, name, version)["approval"]
    assert (approval["decision"], approval["by"], approval["how"], approval["reason"]) == (
        "approved", "approver", "manual", "beats the champion")
    tags = client.get_model_version(name, version).tags  # the mirror people see
    assert (tags["approval"], tags["approved_by"]) == ("approved", "approver")
    pending = [a for a in _alerts(webhook, name) if a["kind"] == "approval_pending"]
    assert len(pending) == 1, "on-call hears once that the version waits for a person"
    assert pending[0]["evidence"]["version_url"] and pending[0]["evidence"]["run_url"]
    assert "holdout_roc_auc" in pending[0]["reason"] and "in Airflow" in pending[0]["reason"]


def test_nobody_answering_in_time_rejects_the_version_and_fails_the_wait(env, training_lake, monkeypatch):
    """Airflow's scheduler resumes a request whose timeout passed with a timeout event (dag.test() has no
    scheduler to do it, so the event is handed to the task as the scheduler hands it)."""
    from airflow.sdk.exceptions import AirflowFailException

    from ml.lake import Lake
    from ml.registry import judge_version
    from plugins.operators.approve_version import ApproveVersionOperator

    monkeypatch.setenv("CONTINUUM_APPROVAL_POLICY", "manual")
    client, name = MlflowClient(env.mlflow_tracking_uri), env.model_name
    version = candidate(training_lake)
    settings = load_settings()
    judge_version(settings.mlflow_tracking_uri, Lake.from_settings(settings.lake), name, version, settings.gates,
                  None)
    wait = ApproveVersionOperator(task_id="wait_for_approval", version=version)
    with pytest.raises(AirflowFailException, match="it is tagged rejected"):
        wait.execute_complete({}, {"error": "The response timeout has passed", "error_type": "timeout"})
    tags = client.get_model_version(name, version).tags
    assert (tags["approval"], tags["approved_by"]) == ("rejected", "timeout")
    assert read_verdict(training_lake, name, version)["approval"]["decision"] == "rejected"
    with pytest.raises(AirflowSkipException, match="rejected by timeout"):
        promote(version)
    assert champion(client, name) is None and not [r for r in audit_log(training_lake) if r["model"] == name]
