"""lake_offload run by the real Airflow task runner (dag.test) against the real broker and a lake folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ml.contract import load_contract
from ml.lake import Lake
from ml.lake.window import Window
from ml.simulate.stream import SimConfig, Simulator

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("telemetry", "outcomes", "predictions")
# an hour of the recent past: the broker keeps a week, judged by record timestamps
_BASE = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=20)


@pytest.fixture(scope="module")
def airflow_db():
    """The test Airflow home's metadata DB (SQLite), migrated once."""
    airflow = Path(sys.executable).with_name("airflow")
    proc = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, env=os.environ)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.fixture
def env(kafka_bootstrap, topic_factory, tmp_path, monkeypatch, airflow_db):
    """Fresh topics and a fresh lake for the DAG's tasks, through the same settings a deployment uses."""
    topics = {kind: topic_factory(f"dag.{kind}", partitions=3) for kind in KINDS}
    for kind, topic in topics.items():
        monkeypatch.setenv(f"CONTINUUM_TOPIC_{kind.upper()}", topic)
    monkeypatch.setenv("CONTINUUM_LAKE_URI", str(tmp_path / "lake"))
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT",
                       json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": kafka_bootstrap}}))
    return topics, Lake(str(tmp_path / "lake"))


def _produce(bootstrap, topics, window, seed, duplicate=False, telemetry=True, garbage=False):
    """The simulator's hour; `duplicate` sends some telemetry events twice, `telemetry=False` none at all,
    `garbage` every telemetry record as bytes no contract reads."""
    from confluent_kafka import Producer

    sim = Simulator(load_contract("machine_telemetry"), SimConfig(devices=20, rate=1.0, seed=seed))
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for batch in sim.replay(window.start_ms, window.end_ms):
        for key, value, ts in zip(batch.keys, batch.values, batch.timestamps):
            if batch.topic == "telemetry" and not telemetry:
                continue
            producer.produce(topics[batch.topic], b"not an event" if garbage and batch.topic == "telemetry" else value,
                             key, timestamp=ts)
            if duplicate and batch.topic == "telemetry" and ts % 50 == 0:
                producer.produce(topics[batch.topic], value, key, timestamp=ts)  # the same event id again
    assert producer.flush(60) == 0
    return sim


def _run(window):
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(str(ROOT / "dags")).get_dag("lake_offload")
    # a manual run covers the last whole interval before its logical date
    run = dag.test(logical_date=window.end)
    assert (run.data_interval_start, run.data_interval_end) == (window.start, window.end)
    return run, {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}


def test_an_hour_is_offloaded_validated_and_announced(kafka_bootstrap, env):
    topics, lake = env
    window = Window.hour(_BASE)
    sim = _produce(kafka_bootstrap, topics, window, seed=uuid.uuid4().int % 10_000, duplicate=True)
    run, states = _run(window)
    assert run.state == "success", states
    manifest = json.loads(lake.read_text(f"raw/telemetry/{window.partition_path}/_manifest.json"))
    assert manifest["rows"] == sim.count_before(window.end_ms) - sim.count_before(window.start_ms)
    assert manifest["status"] == "valid", "events sent twice are quarantined, not a reason to drop the hour"
    assert manifest["quarantine_reasons"]["duplicate"] > 0
    for kind in ("outcomes", "predictions"):
        assert lake.exists(f"raw/{kind}/{window.partition_path}/_manifest.json")
    assert lake.exists(f"validation/telemetry/{window.partition_path}/result.json")

    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        event = (session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                 .filter(AssetModel.name == "validated_telemetry", AssetEvent.source_run_id == run.run_id).one())
        assert event.extra["hour"] == window.start.isoformat()
        assert event.extra["rows"] == manifest["rows"] and event.extra["status"] == "valid"


def test_an_hour_in_which_nothing_arrived_is_empty_and_green(kafka_bootstrap, env):
    topics, lake = env
    window = Window.hour(_BASE + timedelta(hours=2))
    _produce(kafka_bootstrap, topics, window, seed=6, telemetry=False)
    run, states = _run(window)
    assert run.state == "success", states
    manifest = json.loads(lake.read_text(f"raw/telemetry/{window.partition_path}/_manifest.json"))
    assert (manifest["rows"], manifest["quarantined"], manifest["status"]) == (0, 0, "empty")
    result = json.loads(lake.read_text(f"validation/telemetry/{window.partition_path}/result.json"))
    assert result["results"] == [] and result["meta"]["continuum"]["status"] == "empty", "no expectation is run"
    assert not lake.exists(f"validation/telemetry/{window.partition_path}/docs/index.html")


def test_a_bad_hour_fails_validation_and_is_marked_invalid(kafka_bootstrap, env):
    topics, lake = env
    window = Window.hour(_BASE + timedelta(hours=1))
    _produce(kafka_bootstrap, topics, window, seed=5, garbage=True)  # every record quarantined: no row left
    run, states = _run(window)
    assert run.state == "failed"
    assert states[("validate_partition", -1)] == "failed"
    assert all(states[("offload_topic", i)] == "success" for i in range(3))
    manifest = json.loads(lake.read_text(f"raw/telemetry/{window.partition_path}/_manifest.json"))
    assert manifest["status"] == "invalid"
    validation = manifest["validation"]
    assert any(failure.startswith("expect_table_row_count_to_be_between") for failure in validation["critical_failures"])
    assert not any(w.startswith("expect_table_row_count_to_be_between") for w in validation["warnings"]), \
        "an expectation checked at two levels is reported once"
    assert manifest["quarantined"] > 0 and set(manifest["quarantine_reasons"]) != {"duplicate"}
