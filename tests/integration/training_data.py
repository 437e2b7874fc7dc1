"""Lake hours for the training tests: simulated telemetry written and validated the way lake_offload
leaves it, and the outcomes of those events in the hours they were observed in."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.contract import load_contract
from ml.lake import Lake
from ml.lake.window import Window
from ml.simulate.stream import SimConfig, Simulator
from ml.validation import build_suite, validate_hour
from tests.unit.lake_hours import observed_outcomes, publish, publish_outcomes

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = load_contract("machine_telemetry")
SUITE = build_suite(CONTRACT, volume_band=(100, 100_000))


def recent_hours(n: int, ended_hours_ago: int = 7) -> list[Window]:
    """`n` whole hours ending `ended_hours_ago` hours before the current hour (labels have matured)."""
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    return [Window.hour(now - timedelta(hours=ended_hours_ago + n - i)) for i in range(n)]


def _publish(lake, kind: str, window: Window, df: pd.DataFrame, ts_column: str) -> dict:
    return publish(lake, kind, window, df, ts_column)


def write_hours(lake, hours: list[Window], seed: int = 1, rate: float = 1.0, validate: bool = True) -> pd.DataFrame:
    """Telemetry (validated) and observed outcomes for `hours`; returns the events with their labels."""
    sim = Simulator(CONTRACT, SimConfig(devices=40, rate=rate, seed=seed))
    events = sim.frame(hours[0].start_ms, hours[-1].end_ms, with_label=True)
    for window in hours:
        in_hour = events[(events["ts"] >= window.start) & (events["ts"] < window.end)]
        _publish(lake, "telemetry", window, in_hour, "ts")
        if validate:
            assert validate_hour(lake, CONTRACT, "telemetry", window, SUITE).status == "valid"
    publish_outcomes(lake, observed_outcomes(events, np.random.default_rng(seed)))
    return events


@pytest.fixture(scope="session")
def training_lake(tmp_path_factory) -> Lake:
    """A local lake holding three recent validated telemetry hours (about 16,000 events) and their
    outcomes, built once for the training, registry and promotion tests."""
    lake = Lake(str(tmp_path_factory.mktemp("training") / "lake"))
    write_hours(lake, recent_hours(3), seed=3, rate=1.5)
    return lake


@pytest.fixture(scope="session")
def airflow_db():
    """The test Airflow home's metadata DB (SQLite), migrated once."""
    airflow = Path(sys.executable).with_name("airflow")
    proc = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, env=os.environ)
    assert proc.returncode == 0, proc.stderr[-2000:]


def run_dag(dag_id: str, conf: dict | None = None):
    """Run a DAG once with the real task runner; returns the run and {task_id: state}."""
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(str(ROOT / "dags")).get_dag(dag_id)
    run = dag.test(run_conf=conf or {})
    return run, {ti.task_id: ti.state for ti in run.get_task_instances()}


def xcom(run, task_id: str):
    """The value a task of a finished run returned."""
    return next(ti for ti in run.get_task_instances() if ti.task_id == task_id).xcom_pull(task_ids=task_id)
