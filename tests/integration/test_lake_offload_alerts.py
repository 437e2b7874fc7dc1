"""A bad hour in lake_offload (run by the real task runner, dag.test) pages on-call twice through a real
webhook: `hour_invalid` with the summary, the Data Docs and the manifest, then `task_failed` for the
red validate task with its log link. The log file (the local stack's channel) gets the same two."""

from __future__ import annotations

import json
from datetime import timedelta

from ml.alerts import HOUR_INVALID, TASK_FAILED, read_alert_log
from ml.offload import Window
from tests.integration.alert_support import use_webhook, webhook  # noqa: F401
from tests.integration.test_lake_offload_dag import _BASE, _produce, _run, airflow_db, env  # noqa: F401


def test_an_invalid_hour_alerts_on_call_with_the_evidence(kafka_bootstrap, env, webhook, monkeypatch, tmp_path):
    topics, lake = env
    use_webhook(monkeypatch, webhook.url)
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    monkeypatch.setenv("CONTINUUM_ALERT_STATE_PATH", str(tmp_path / "alerts" / "state.json"))
    monkeypatch.setenv("CONTINUUM_ALERT_LOG_PATH", str(tmp_path / "alerts.jsonl"))
    monkeypatch.setenv("CONTINUUM_ALERT_TO_TOPIC", "false")
    window = Window.hour(_BASE + timedelta(hours=3))
    _produce(kafka_bootstrap, topics, window, seed=7, telemetry=False)  # an empty hour

    run, states = _run(window)

    assert states[("validate_partition", -1)] == "failed"
    manifest = json.loads(lake.read_text(f"raw/telemetry/{window.partition_path}/_manifest.json"))
    assert manifest["status"] == "invalid"
    bodies = [b["json"] for b in webhook.bodies]
    assert [b["type"] for b in bodies] == [HOUR_INVALID, TASK_FAILED], bodies

    invalid, failed = bodies
    hour = f"{window.start:%Y-%m-%dT%H}"
    assert hour in invalid["title"] and invalid["dedupe_key"] == f"hour_invalid:telemetry:{hour}"
    assert any("expect_table_row_count_to_be_between" in line for line in invalid["reason"].splitlines())
    docs = invalid["evidence"]["data_docs"]
    assert docs.startswith(lake.url(f"validation/telemetry/{window.partition_path}/docs/"))
    assert invalid["evidence"]["manifest"] == lake.url(f"raw/telemetry/{window.partition_path}/_manifest.json")
    ids = (invalid["dag_id"], invalid["run_id"], invalid["task_id"])
    assert ids == ("lake_offload", run.run_id, "validate_partition")
    assert docs in invalid["text"]

    assert (failed["dag_id"], failed["task_id"], failed["run_id"]) == ("lake_offload", "validate_partition", run.run_id)
    assert "is invalid" in failed["reason"] and docs.split("/docs/")[0] in failed["reason"]
    assert "/dags/lake_offload/runs/" in failed["evidence"]["task_log"]
    assert failed["evidence"]["task_log"].endswith("/tasks/validate_partition?try_number=1")

    assert [a.kind for a in read_alert_log(tmp_path / "alerts.jsonl")] == [HOUR_INVALID, TASK_FAILED]
