"""The whole loop, shortened, on the running local stack: every component for real (Kafka, the sidecar,
Airflow's scheduler running the DAGs, MLflow's registry, the lake), time compressed by replaying hours in
real time's order (paced hour by hour).

Then the backtest plays the configured policy in process on the events the loop streamed (read back
from the lake) and must decide every window as the loop's monitor did.

It resets the stack's topics, lake and registered model, so it runs last (tests/conftest.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient

from ml.backtest.data import stream_from_lake
from ml.contract import load_contract
from ml.lake import Lake
from tests.e2e.agreement import backtest_disagreements, settings_of
from tooling.local_dir import stack_defaults_env

ROOT = Path(__file__).resolve().parents[2]
STACK = [sys.executable, str(ROOT / "docker" / "local" / "stack.py")]
LOOP = [str(Path(sys.executable).with_name("continuum-loop"))]
ENV = stack_defaults_env()


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def sidecar(tmp_path):
    """The sidecar of the local stack, started after the reset (and stopped after, if this test started it)."""
    for cmd in (STACK + ["down", "serving"], LOOP + ["reset"]):
        proc = _run(cmd, 180)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    started = tmp_path / "started"
    proc = _run(STACK + ["up", "serving", "--started-file", str(started)], 120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    yield "http://127.0.0.1:8000"
    _run(STACK + ["down", "--started-file", str(started)], 120)


@pytest.mark.timeout(1600)  # the loop's own limit is 1500 s: its error, with the step that failed, comes first
def test_the_loop_closes(sidecar, tmp_path, kafka_bootstrap, mlflow_uri):
    summary_path = tmp_path / "summary.json"
    proc = _run(LOOP + ["run", "--profile", "short", "--summary", str(summary_path)], 1500)
    print(proc.stdout[-6000:])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    s = json.loads(summary_path.read_text())

    detected = s["detected_by"]
    assert detected is not None and detected["kind"] == "data", detected
    assert 0 < detected["hours_after_onset"] <= 4
    assert {"site", "rotational_speed_rpm"} <= set(detected["drifted"])
    assert s["versions"]["after"] != s["versions"]["before"]
    # the new champion learned the drifted regime: its window starts where the change was first seen
    onset, trained = datetime.fromisoformat(s["drift_onset"]), s["retrained_on"]
    assert onset - timedelta(hours=1) <= datetime.fromisoformat(trained["start"]) <= onset + timedelta(hours=3), trained
    # the sidecar serves the registry's champion (the new one, or a later retrain of the loop's own)
    current = MlflowClient(mlflow_uri).get_model_version_by_alias("machine-failure", "champion").version
    health = requests.get(f"{sidecar}/healthz", timeout=10).json()
    assert health["ready"] and health["champion"] == current != s["versions"]["before"]
    before, after = s["live"]["before"], s["live"]["after"]
    assert before["labels"] >= 500 and after["labels"] >= 300, (before, after)
    assert after["roc_auc"] > before["roc_auc"], (before, after)
    # played in real time's order: from the first champion's promotion on, every event id scored exactly once,
    # each by the version that was champion at the event's time (the audit trail's answer); none before it
    served = s["served"]
    assert served["events"] > 0 and served["scored"] == served["events"], served
    assert (served["missing"], served["duplicates"], served["not_to_be_scored"], served["stale_scored"]) == (0, 0, 0, 0)
    assert s["events_scored"] == served["events"] and s["dlq"] == 0
    assert [m["version"] for m in s["champion_moves"]][:2] == [s["versions"]["before"], s["versions"]["after"]]
    assert Path(s["urls"]["loop_report"]).read_text().count("<svg") >= 3
    # the backtest, on the same events and settings, decides every window as the loop's monitor recorded it
    t = {k: datetime.fromisoformat(v) for k, v in s["timeline"].items()}
    with settings_of(ENV) as settings:
        stream = stream_from_lake(Lake.from_settings(settings.lake), load_contract(settings.contract), t["start"], t["end"])
        assert backtest_disagreements(stream, settings, int((t["onset"] - t["start"]) / timedelta(hours=1))) == ""
