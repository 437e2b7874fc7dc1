"""The local Airflow parses the repo's DAGs with no import errors and guards its REST API with a token."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import AIRFLOW_URL, airflow_login
from tooling.loop.airflow_api import AirflowApi

ROOT = Path(__file__).resolve().parents[2]


def test_rest_api_refuses_a_request_without_a_valid_token():
    assert requests.get(f"{AIRFLOW_URL}/api/v2/dags", timeout=10).status_code == 401
    bad = {"Authorization": "Bearer not-a-token"}
    assert requests.get(f"{AIRFLOW_URL}/api/v2/dags", headers=bad, timeout=10).status_code in (401, 403)


def test_the_running_airflow_parses_every_repo_dag(airflow_token):
    headers = {"Authorization": f"Bearer {airflow_token}"}
    expected = {p.stem for p in (ROOT / "dags").glob("*.py") if not p.name.startswith("_")}
    deadline, dag_ids = time.monotonic() + 120, set()
    while time.monotonic() < deadline:
        errors = requests.get(f"{AIRFLOW_URL}/api/v2/importErrors", headers=headers, timeout=10).json()
        assert errors["total_entries"] == 0, errors["import_errors"]
        dags = requests.get(f"{AIRFLOW_URL}/api/v2/dags", headers=headers, timeout=10).json()["dags"]
        dag_ids = {d["dag_id"] for d in dags}
        if expected <= dag_ids:
            break
        time.sleep(3)
    assert expected <= dag_ids, f"not parsed by the dag-processor: {expected - dag_ids}"


def test_a_cli_backfill_offloads_and_validates_every_hour(airflow_token, kafka_bootstrap):
    """`airflow backfill create` on the running Airflow: each hour of the range gets its runs, its Parquet
    and a valid manifest in the stack's lake (the events carry a fresh seed, so reruns never clash)."""
    import random
    import subprocess
    import sys
    from datetime import datetime, timedelta, timezone

    import pyarrow.parquet as pq

    from ml.contract import load_contract
    from ml.settings import load_settings
    from ml.lake.window import Window
    from ml.simulate.produce import KafkaSink
    from ml.simulate.stream import SimConfig, Simulator

    sys.path.insert(0, str(ROOT / "docker" / "local"))
    from services.airflow import airflow_env

    # The stack's topic is shared and the offload expects time order (within the lateness): use the
    # first free hours after anything already in it, and within the broker's week of retention.
    now = datetime.now(timezone.utc)
    latest = _latest_timestamp(kafka_bootstrap, "telemetry")
    start = max(now - timedelta(hours=100), (latest or now - timedelta(days=30)) + timedelta(minutes=15))
    base = start.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if base + timedelta(hours=2, minutes=15) > now:
        pytest.fail(f"the stack's telemetry topic already holds events up to {latest}; this test needs two free "
                    "hours before now: run it on a fresh stack (make down; rm -rf .local)")
    hours = [Window.hour(base), Window.hour(base + timedelta(hours=1))]
    sim = Simulator(load_contract("machine_telemetry"), SimConfig(devices=30, rate=1.0, seed=random.randint(1, 10**9)))
    sink = KafkaSink(kafka_bootstrap, {"telemetry": "telemetry", "outcomes": "outcomes"})
    for batch in sim.replay(hours[0].start_ms, hours[-1].end_ms):
        sink.send(batch)
    assert sink.close().ok
    ours = {h.partition_path: set(sim.frame(h.start_ms, h.end_ms, with_label=False)["event_id"]) for h in hours}

    proc = subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "backfill", "create", "--dag-id", "lake_offload",
         "--from-date", hours[0].start.isoformat(), "--to-date", hours[-1].start.isoformat(),
         "--reprocess-behavior", "completed"],
        env={**os.environ, **airflow_env()}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]

    headers = {"Authorization": f"Bearer {airflow_token}"}
    wanted = {h.start.strftime("%Y-%m-%dT%H:%M:%SZ") for h in hours}
    deadline, states = time.monotonic() + 300, {}
    while time.monotonic() < deadline:
        runs = requests.get(f"{AIRFLOW_URL}/api/v2/dags/lake_offload/dagRuns", headers=headers,
                            params={"run_type": "backfill", "limit": 100, "order_by": "-start_date"}, timeout=10).json()
        states = {r["data_interval_start"]: r["state"] for r in runs["dag_runs"] if r["data_interval_start"] in wanted}
        if len(states) == 2 and all(s in ("success", "failed") for s in states.values()):
            break
        time.sleep(5)
    assert states and set(states.values()) == {"success"}, states
    # the loop's client reads the same runs and their tasks (how it tells a waiting sensor from work)
    api = AirflowApi(AIRFLOW_URL, *airflow_login())
    run_id = next(r["dag_run_id"] for r in runs["dag_runs"] if r["data_interval_start"] in wanted)
    assert api.task_state("lake_offload", run_id, "wait_for_lateness") == "success"
    assert api.task_state("lake_offload", "no-such-run", "wait_for_lateness") is None
    assert all(run != run_id for _, run in api.active(["lake_offload"]))

    lake = Path(load_settings().lake_uri)  # the stack's lake (make test: its own, under .local/test)
    for hour in hours:
        folder = lake / "raw" / "telemetry" / hour.partition_path
        manifest = json.loads((folder / "_manifest.json").read_text())
        assert manifest["status"] == "valid"
        ids = set()
        for f in manifest["files"]:
            ids |= set(pq.read_table(lake / f["key"], columns=["event_id"]).column("event_id").to_pylist())
        assert ours[hour.partition_path] <= ids, "every event of the hour is in the hour's files"


def _latest_timestamp(bootstrap: str, topic: str):
    """The largest record timestamp in a topic (None when it is empty), as the broker reports it."""
    from datetime import datetime, timezone

    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec

    admin = AdminClient({"bootstrap.servers": bootstrap})
    parts = admin.list_topics(topic, timeout=10).topics[topic].partitions
    found = admin.list_offsets({TopicPartition(topic, p): OffsetSpec.max_timestamp() for p in parts})
    stamps = [f.result(10).timestamp for f in found.values()]
    stamps = [t for t in stamps if t is not None and t >= 0]
    return datetime.fromtimestamp(max(stamps) / 1000, timezone.utc) if stamps else None
