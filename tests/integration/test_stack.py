"""The local services that `make test` starts are the real ones and behave as the product expects."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXPECTED_TOPICS = {"telemetry": 6, "outcomes": 3, "predictions": 6, "alerts": 1, "telemetry.dlq": 1, "control": 1}


def test_kafka_has_the_architecture_topics(kafka_bootstrap):
    from confluent_kafka.admin import AdminClient

    topics = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10).topics
    for name, partitions in EXPECTED_TOPICS.items():
        assert name in topics, f"topic {name} missing"
        assert len(topics[name].partitions) == partitions, f"{name}: {len(topics[name].partitions)} partitions"


def test_kafka_round_trip_keeps_key_timestamp_and_partition(kafka_bootstrap, topic_factory):
    from confluent_kafka import Consumer, Producer, TopicPartition

    topic = topic_factory("roundtrip", partitions=3)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 5})
    ts0 = 1_763_800_000_000
    for i in range(300):
        producer.produce(topic, key=f"dev-{i % 7}", value=json.dumps({"i": i}).encode(), timestamp=ts0 + i)
    assert producer.flush(30) == 0

    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"t-{uuid.uuid4()}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
    seen, deadline = {}, time.monotonic() + 30
    while len(seen) < 300 and time.monotonic() < deadline:
        for msg in consumer.consume(500, timeout=1):
            assert msg.error() is None
            i = json.loads(msg.value())["i"]
            seen[i] = msg
    consumer.close()
    assert sorted(seen) == list(range(300))
    assert all(m.timestamp()[1] == ts0 + i for i, m in seen.items())
    partitions_of = {}
    for i, m in seen.items():
        partitions_of.setdefault(m.key(), set()).add(m.partition())
    assert all(len(p) == 1 for p in partitions_of.values()), "one key must stay on one partition"


def test_mlflow_server_stores_runs_and_serves_artifacts(mlflow_uri, tmp_path):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_uri)
    exp_id = client.create_experiment(f"stack-check-{uuid.uuid4().hex[:8]}")
    run = client.create_run(exp_id)
    client.log_metric(run.info.run_id, "auc", 0.91)
    report = tmp_path / "report.json"
    report.write_text('{"ok": true}')
    client.log_artifact(run.info.run_id, str(report))
    client.set_terminated(run.info.run_id)

    fetched = client.get_run(run.info.run_id)
    assert fetched.data.metrics["auc"] == pytest.approx(0.91)
    local = client.download_artifacts(run.info.run_id, "report.json", str(tmp_path / "dl"))
    assert json.loads(Path(local).read_text()) == {"ok": True}
    # artifacts go through the server (proxied), not straight to a path the client must share
    assert fetched.info.artifact_uri.startswith("mlflow-artifacts:")


def test_reset_airflow_empties_a_database_with_runs_and_keeps_one_without(tmp_path):
    """`make demo`'s clean slate for Airflow, on the stack's PostgreSQL but a database and a stack folder of
    its own (nothing of the running Airflow)."""
    import shutil
    import subprocess
    import sys
    from contextlib import closing

    sys.path.insert(0, str(ROOT / "docker" / "local"))
    from services import postgres

    if not postgres.ready():
        pytest.fail("the local PostgreSQL is not running: `make test` starts it (stack.py up postgres)")
    database = f"reset_check_{uuid.uuid4().hex[:8]}"
    (tmp_path / "secrets").mkdir()
    shutil.copy(postgres.PG_PASSWORD_FILE, tmp_path / "secrets" / postgres.PG_PASSWORD_FILE.name)
    (tmp_path / "airflow").mkdir()
    (tmp_path / "airflow" / "simple_auth_manager_passwords.json.generated").write_text('{"admin": "x"}')
    env = {**os.environ, "CONTINUUM_LOCAL_DIR": str(tmp_path), "CONTINUUM_LOCAL_AIRFLOW_PORT": "1",
           "CONTINUUM_LOCAL_AIRFLOW_DB": database}

    def reset() -> str:
        proc = subprocess.run([sys.executable, str(ROOT / "docker" / "local" / "stack.py"), "reset-airflow"],
                              env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout + proc.stderr

    def tables() -> set[str]:
        with closing(postgres.connect(database)) as conn, conn.cursor() as cur:
            cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            return {row[0] for row in cur.fetchall()}

    with closing(postgres.connect()) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {database}")
    try:
        with closing(postgres.connect(database)) as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE dag_run (id INTEGER PRIMARY KEY)")
        assert reset() == "" and tables() == {"dag_run"}  # no runs: kept as it is
        with closing(postgres.connect(database)) as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO dag_run (id) VALUES (1), (2)")
        assert "metadata database emptied (2 DAG runs)" in reset()
        assert tables() == set(), "the database is there again, empty"
        assert (tmp_path / "airflow" / "simple_auth_manager_passwords.json.generated").exists()
    finally:
        with closing(postgres.connect()) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
