"""The embedded stack on the CeleryExecutor (`CONTINUUM_EXECUTOR=celery`), in a stack folder of its own on
free ports: its PostgreSQL, its Redis broker, its Airflow (scheduler, dag-processor, triggerer and API
server as separate processes) and two Celery workers, with the suite's Kafka, MLflow and S3. An hour's
lake_offload and a monitor_model window triggered through the REST API both succeed, and each worker ran
some of their tasks (Celery's own count, asked through the broker)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

import pytest

from ml.contract import load_contract
from ml.lake import Lake
from ml.lake.window import Window
from ml.settings.login import stack_secrets
from ml.simulate.stream import SimConfig, Simulator
from plugins.dag_ids import LAKE_OFFLOAD, MONITOR_MODEL
from tests.integration.stack_folder import ROOT, STACK, free_port
from tooling.local_dir import stack_defaults_env
from tooling.loop.airflow_api import AirflowApi

pytestmark = pytest.mark.integration

KINDS = ("telemetry", "outcomes", "predictions")
# an hour of the recent past (the broker keeps a week), in fresh topics
HOUR = Window.hour(datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=20))


@pytest.fixture
def celery_stack(kafka_bootstrap, mlflow_uri, topic_factory):
    """The stack's folder, environment and Airflow login once `up postgres airflow` has started PostgreSQL,
    Redis, Airflow and the workers there; everything it started is stopped and the folder removed after."""
    folder = ROOT / ".local" / f"celery-check-{uuid.uuid4().hex[:8]}"
    (folder / "secrets").mkdir(parents=True)
    # the suite's MLflow: its pipeline login, which this stack hands its Airflow
    shutil.copy(stack_secrets() / "mlflow-pipeline", folder / "secrets" / "mlflow-pipeline")
    topics = {kind: topic_factory(f"celery.{kind}", partitions=3) for kind in KINDS}
    env = {**stack_defaults_env(), "CONTINUUM_LOCAL_DIR": str(folder), "CONTINUUM_EXECUTOR": "celery",
           "CONTINUUM_LAKE_URI": str(folder / "lake"), "CONTINUUM_ALERT_STATE_PATH": str(folder / "alerts.json"),
           "CONTINUUM_LOCAL_KAFKA_PORT": str(urlparse(f"//{kafka_bootstrap}").port),
           "CONTINUUM_KAFKA_BOOTSTRAP": kafka_bootstrap, "CONTINUUM_MLFLOW_TRACKING_URI": mlflow_uri,
           "CONTINUUM_MODEL_NAME": f"celery-{uuid.uuid4().hex[:8]}",  # no champion: a cheap monitoring window
           "CONTINUUM_TOPIC_ALERTS": topic_factory("celery.alerts"),
           **{f"CONTINUUM_TOPIC_{kind.upper()}": topic for kind, topic in topics.items()},
           **{f"CONTINUUM_LOCAL_{name}_PORT": str(free_port()) for name in ("POSTGRES", "REDIS", "AIRFLOW")},
           # only the runs triggered here: no schedule creates others; the DAG files parsed once
           "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False", "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
           "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
           # two task slots a worker: the offload's three topics cannot all go to one
           "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2"}
    started = folder / "run" / "started"
    try:
        up = subprocess.run(STACK + ["up", "postgres", "airflow", "--started-file", str(started)], env=env,
                            capture_output=True, text=True, timeout=600)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        assert "redis ready" in up.stdout and "celery workers ready" in up.stdout, up.stdout
        passwords = json.loads((folder / "airflow" / "simple_auth_manager_passwords.json.generated").read_text())
        user, password = next(iter(passwords.items()))
        api = AirflowApi(f"http://127.0.0.1:{env['CONTINUUM_LOCAL_AIRFLOW_PORT']}", user, password)
        yield env, topics, api
    finally:
        subprocess.run(STACK + ["down", "--started-file", str(started)], env=env, capture_output=True, timeout=300)
        shutil.rmtree(folder, ignore_errors=True)


def _produce(bootstrap: str, topics: dict[str, str]) -> int:
    """The simulator's hour into the topics; returns how many telemetry events it holds."""
    from confluent_kafka import Producer

    sim = Simulator(load_contract("machine_telemetry"), SimConfig(devices=10, rate=1.0, seed=3))
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for batch in sim.replay(HOUR.start_ms, HOUR.end_ms):
        for key, value, ts in zip(batch.keys, batch.values, batch.timestamps):
            producer.produce(topics[batch.topic], value, key, timestamp=ts)
    assert producer.flush(60) == 0
    return sim.count_before(HOUR.end_ms) - sim.count_before(HOUR.start_ms)


def _worker_totals(env: dict) -> dict[str, int]:
    """How many tasks each worker has run since it started, by its Celery node name (`inspect stats`)."""
    code = ("import json, sys; sys.path.insert(0, 'docker/local'); from services import workers; "
            "print(json.dumps({n: sum(s.get('total', {}).values()) "
            "for n, s in workers.replies(workers.inspect('stats', 5)).items()}))")
    found = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
    assert found.returncode == 0, found.stderr[-2000:]
    return json.loads(found.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(900)
def test_runs_triggered_through_the_api_succeed_on_two_celery_workers(celery_stack, kafka_bootstrap):
    env, topics, api = celery_stack
    events = _produce(kafka_bootstrap, topics)
    api.wait_parsed([LAKE_OFFLOAD, MONITOR_MODEL], timeout_s=240)
    # both at once: the monitor's window does not wait for the offload (no champion: it judges no data)
    offload = api.trigger_interval(LAKE_OFFLOAD, HOUR.start, HOUR.end)
    monitor = api.trigger(MONITOR_MODEL, {"end": HOUR.end.isoformat(), "hours": 1})
    for dag_id, run_id in ((LAKE_OFFLOAD, offload), (MONITOR_MODEL, monitor)):
        [run] = api.wait_runs(dag_id, lambda runs, r=run_id: [x for x in runs if x["dag_run_id"] == r], 420, dag_id)
        assert run["state"] == "success", api.run_url(dag_id, run_id)
    manifest = json.loads(Lake(env["CONTINUUM_LAKE_URI"]).read_text(f"raw/telemetry/{HOUR.partition_path}/_manifest.json"))
    assert (manifest["status"], manifest["rows"]) == ("valid", events), "the hour offloaded on the workers"

    totals = _worker_totals(env)
    names = {f"worker{i}" for i in (1, 2)}
    assert {node.split("@")[0] for node in totals} == names, totals
    assert all(count > 0 for count in totals.values()), f"a worker ran no task: {totals}"
