"""ml.registry against the real MLflow server, the real lake (local and S3) and the real broker."""

from __future__ import annotations

import json
import uuid

import mlflow
import numpy as np
import pytest
import xgboost as xgb
from confluent_kafka import Consumer, Producer
from mlflow import MlflowClient

from ml.contract import load_contract, model_frame
from ml.lake.layout import audit_prefix
from ml.registry import (
    RegistryError, audit_log, by_alias, champion, load_version, publish_control, rollback_target,
    set_champion,
)
from ml.simulate.stream import SimConfig, Simulator

CONTRACT = load_contract("machine_telemetry")


@pytest.fixture
def registered(mlflow_uri):
    """A fresh registered model with three versions (of one small booster, logged once in UBJ), tagged like
    retrain_model does."""
    name = f"test-mf-{uuid.uuid4().hex[:8]}"
    df = Simulator(CONTRACT, SimConfig(devices=10, rate=1.0, seed=2)).frame(0, 1_800_000)
    X = model_frame(CONTRACT, df)
    dtrain = xgb.DMatrix(X, df["failure"], enable_categorical=True)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3}, dtrain, 10)
    mlflow.set_tracking_uri(mlflow_uri)
    mlflow.set_experiment(name)
    client = MlflowClient(mlflow_uri)
    client.create_registered_model(name)
    with mlflow.start_run() as run:
        info = mlflow.xgboost.log_model(booster, name="model", model_format="ubj", input_example=X.iloc[:3])
    for _ in range(3):
        client.create_model_version(name, info.model_uri, run.info.run_id, model_id=info.model_id,
                                    tags={"threshold": "0.3", "contract": CONTRACT.name})
    return client, name, booster, df


def test_no_champion_before_the_first_promotion(registered, mlflow_uri):
    client, name, _, _ = registered
    assert champion(client, name) is None and champion(client, f"{name}-never-registered") is None
    with pytest.raises(RegistryError, match="has no version '9'"):
        load_version(mlflow_uri, name, "9")


def test_a_loaded_version_is_the_native_booster_and_scores_the_same(registered, mlflow_uri):
    _, name, booster, df = registered
    loaded, threshold, tags = load_version(mlflow_uri, name, "2")
    assert isinstance(loaded, xgb.Booster) and threshold == 0.3 and tags["contract"] == CONTRACT.name
    X = model_frame(CONTRACT, df)
    np.testing.assert_array_equal(loaded.inplace_predict(X), booster.inplace_predict(X))


def test_champion_moves_keep_previous_and_an_audit_trail(registered, lake):
    client, name, _, _ = registered
    first = set_champion(client, name, "1", "alice", "first model", lake)
    assert (first["from"], first["to"], first["actor"], first["type"]) == (None, "1", "alice", "promotion")
    assert set_champion(client, name, "1", "bob", "retried task", lake) == first, "a rerun moves and audits nothing"
    second = set_champion(client, name, "2", "policy:auto", "better", lake)
    assert (champion(client, name).version, by_alias(client, name, "previous").version) == ("2", "1")
    assert rollback_target(client, name) == "1" and rollback_target(client, name, "3") == "3"
    back = set_champion(client, name, rollback_target(client, name), "carol", "alerts", lake, kind="rollback")
    assert (back["from"], back["to"], back["type"]) == ("2", "1", "rollback")
    assert by_alias(client, name, "previous").version == "2"
    assert audit_log(lake) == [first, second, back]
    assert len(lake.list(audit_prefix())) == 3, "one object per move"


def test_rollback_without_a_previous_version_says_so(registered):
    client, name, _, _ = registered
    with pytest.raises(RegistryError, match="no `previous` version"):
        rollback_target(client, name)


def test_the_control_message_reaches_the_broker(registered, lake, kafka_bootstrap, topic_factory):
    client, name, _, _ = registered
    topic = topic_factory("control")
    record = set_champion(client, name, "3", "alice", "manual", lake)
    sent = publish_control(Producer({"bootstrap.servers": kafka_bootstrap}), topic, record)
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"t-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    msg = None
    for _ in range(30):
        msg = consumer.poll(1.0)
        if msg is not None and not msg.error():
            break
    consumer.close()
    assert msg is not None and msg.key() == name.encode()
    assert json.loads(msg.value()) == sent == {"type": "promotion", "model": name, "alias": "champion", "version": "3",
                                               "previous": None, "at": record["at"], "reason": "manual"}


def test_during_a_paced_replay_a_move_takes_effect_at_the_replay_clock(registered, lake):
    """The audit trail answers "which version was champion at this event's time" in event time too."""
    from datetime import datetime, timedelta, timezone

    from ml import clock
    from ml.registry.history import ChampionTimeline

    client, name, _, _ = registered
    replayed = datetime(2026, 11, 22, 13, 10, tzinfo=timezone.utc)
    clock.set_clock(lake, replayed)
    try:
        first = set_champion(client, name, "1", "policy:auto", "first model", lake)
        clock.set_clock(lake, replayed + timedelta(hours=3))
        second = set_champion(client, name, "2", "policy:auto", "better", lake)
    finally:
        clock.clear_clock(lake)
    assert (first["at"], second["at"]) == (replayed.isoformat(timespec="seconds"),
                                           (replayed + timedelta(hours=3)).isoformat(timespec="seconds"))
    assert client.get_model_version(name, "2").tags["champion_since"] == second["at"]
    timeline = ChampionTimeline.from_records(audit_log(lake), name)
    assert [timeline.at(replayed + timedelta(hours=h)) for h in (0, 2.99, 3)] == ["1", "1", "2"]
    third = set_champion(client, name, "3", "policy:auto", "after the replay", lake)
    assert datetime.fromisoformat(third["at"]) > datetime.now(timezone.utc) - timedelta(minutes=5)
