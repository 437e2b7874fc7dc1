"""lake_offload's alerts (run by the real task runner, dag.test) through a real webhook: a bad hour pages on-call
once, with the evidence (`hour_invalid`, not also `task_failed`); a silent stream is told once when the run of
empty hours reaches CONTINUUM_SILENCE_HOURS and once when events come back. The log file (the local stack's
channel) gets the same."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from ml.alerts import HOUR_INVALID, STREAM_BACK, STREAM_SILENT, read_alert_log
from ml.lake.window import Window
from tests.integration.alert_support import use_webhook, webhook  # noqa: F401
from tests.integration.test_lake_offload_dag import _BASE, _produce, _run, airflow_db, env  # noqa: F401


@pytest.fixture
def on_call(webhook, monkeypatch, tmp_path):  # noqa: F811
    use_webhook(monkeypatch, webhook.url)
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    monkeypatch.setenv("CONTINUUM_ALERT_STATE_PATH", str(tmp_path / "alerts" / "state.json"))
    monkeypatch.setenv("CONTINUUM_ALERT_LOG_PATH", str(tmp_path / "alerts.jsonl"))
    monkeypatch.setenv("CONTINUUM_ALERT_TO_TOPIC", "false")
    return webhook, tmp_path / "alerts.jsonl"


def test_an_invalid_hour_alerts_on_call_once_with_the_evidence(kafka_bootstrap, env, on_call):
    topics, lake = env
    webhook, log_path = on_call
    window = Window.hour(_BASE + timedelta(hours=3))
    _produce(kafka_bootstrap, topics, window, seed=7, garbage=True)  # every telemetry record unreadable

    run, states = _run(window)

    assert states[("validate_partition", -1)] == "failed"
    manifest = json.loads(lake.read_text(f"raw/telemetry/{window.partition_path}/_manifest.json"))
    assert manifest["status"] == "invalid"
    bodies = [b["json"] for b in webhook.bodies]
    assert [b["type"] for b in bodies] == [HOUR_INVALID], "the red task's task_failed would say the same again"

    [invalid] = bodies
    hour = f"{window.start:%Y-%m-%dT%H}"
    assert hour in invalid["title"] and invalid["dedupe_key"] == f"hour_invalid:telemetry:{hour}"
    assert invalid["severity"] == "warn"
    assert any("expect_table_row_count_to_be_between" in line for line in invalid["reason"].splitlines())
    docs = invalid["evidence"]["data_docs"]
    assert docs.startswith(lake.url(f"validation/telemetry/{window.partition_path}/docs/"))
    assert invalid["evidence"]["manifest"] == lake.url(f"raw/telemetry/{window.partition_path}/_manifest.json")
    ids = (invalid["dag_id"], invalid["run_id"], invalid["task_id"])
    assert ids == ("lake_offload", run.run_id, "validate_partition")
    assert docs in invalid["text"]
    assert "/dags/lake_offload/runs/" in invalid["evidence"]["task_log"]
    assert [a.kind for a in read_alert_log(log_path)] == [HOUR_INVALID]


def test_a_silent_stream_is_told_once_and_its_return_once(kafka_bootstrap, env, on_call, monkeypatch):
    topics, lake = env
    webhook, log_path = on_call
    monkeypatch.setenv("CONTINUUM_SILENCE_HOURS", "2")
    first, second, back = (Window.hour(_BASE + timedelta(hours=h)) for h in (5, 6, 7))
    _produce(kafka_bootstrap, topics, back, seed=8)  # the two hours before it hold no telemetry

    states = [_run(window)[0].state for window in (first, second, second, back)]  # the second one twice

    assert states == ["success"] * 4, "empty hours are green"
    bodies = [b["json"] for b in webhook.bodies]
    assert [(b["type"], b["severity"]) for b in bodies] == [(STREAM_SILENT, "warn"), (STREAM_BACK, "info")], \
        "one 'silent' when the second empty hour completes the run (its rerun sends none), one 'back'"
    since = f"{first.start:%Y-%m-%dT%H}:00Z"
    assert bodies[0]["title"] == f"telemetry stream silent since {since}"
    assert bodies[1]["title"] == f"telemetry stream back after 2 silent hours since {since}"
    assert [a.kind for a in read_alert_log(log_path)] == [STREAM_SILENT, STREAM_BACK]
