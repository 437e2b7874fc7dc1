"""Alerts render the same facts for every channel, and the cooldown drops repeats until it has passed."""

from __future__ import annotations

import json
import multiprocessing
from datetime import datetime, timedelta, timezone

import pytest

from ml.alerts import (APPROVAL_PENDING, DEFAULT_SEVERITY, HOUR_INVALID, INFO, LEVELS, MODEL_REFUSED, PAGE, PROMOTED,
                       RETRAIN_DECISION, ROLLED_BACK, STREAM_BACK, STREAM_SILENT, TASK_FAILED, WARN, Alert, forget, read_alert_log, should_send,
                       write_alert_log)

T0 = datetime(2026, 11, 22, 13, 0, tzinfo=timezone.utc)
DOCS = "s3://continuum-lake/validation/telemetry/dt=2026-11-22/hour=13/docs/index.html"


def _invalid_hour() -> Alert:
    return Alert(HOUR_INVALID, title="telemetry hour 2026-11-22T13:00Z is invalid",
                 reason="invalid: 1200 rows, 1 critical failures\nCRITICAL event_id is not unique (12 rows)",
                 evidence={"data_docs": DOCS, "manifest": "s3://continuum-lake/raw/telemetry/x/_manifest.json"},
                 subject="telemetry", dag_id="lake_offload", run_id="scheduled__2026-11-22T14:00:00+00:00",
                 task_id="validate_partition", dedupe_key="hour_invalid:telemetry:2026-11-22T13")


def test_json_body_is_slack_compatible_and_structured():
    body = json.loads(_invalid_hour().to_json())
    # Slack incoming webhooks show `text`; it must carry the headline, the reason and every link
    assert body["text"].startswith("[WARN] telemetry hour 2026-11-22T13:00Z is invalid")
    assert "event_id is not unique" in body["text"] and DOCS in body["text"]
    assert "dag lake_offload / task validate_partition" in body["text"]
    assert body["type"] == body["kind"] == HOUR_INVALID and body["severity"] == WARN
    assert (body["event_severity"], body["priority"], body["severity_meaning"]) == ("warning", "P3", "look today")
    assert body["evidence"]["data_docs"] == DOCS
    assert body["dedupe_key"] == "hour_invalid:telemetry:2026-11-22T13"
    alert = _invalid_hour()
    assert Alert.from_dict(json.loads(alert.to_json())) == alert  # what a consumer of the topic reads back


def test_email_has_subject_and_links():
    subject, body = _invalid_hour().to_email()
    assert subject == "[continuum] [WARN] telemetry hour 2026-11-22T13:00Z is invalid"
    assert "severity warn: look today" in body
    assert "- data_docs: " + DOCS in body
    assert "CRITICAL event_id is not unique (12 rows)" in body


def test_defaults_follow_the_kind():
    alert = Alert(PROMOTED, title="machine-failure v7 is champion", reason="beats v6 by 0.01",
                  subject="machine-failure")
    assert alert.severity == INFO
    assert alert.dedupe_key == "promoted:machine-failure"
    failed = Alert(TASK_FAILED, title="x failed", reason="boom", dag_id="lake_offload")
    assert failed.severity == PAGE and failed.subject == "lake_offload"
    assert datetime.fromisoformat(failed.created_at).tzinfo is not None


def test_every_kind_has_a_level_with_a_meaning_and_channel_fields():
    levels = {kind: Alert(kind, title="t", reason="r").severity for kind in DEFAULT_SEVERITY}
    assert levels == {TASK_FAILED: PAGE, HOUR_INVALID: WARN, MODEL_REFUSED: WARN, ROLLED_BACK: WARN,
                      APPROVAL_PENDING: WARN, RETRAIN_DECISION: INFO, PROMOTED: INFO, STREAM_SILENT: WARN,
                      STREAM_BACK: INFO}
    bodies = {level: Alert(PROMOTED, title="t", reason="r", severity=level) for level in LEVELS}
    assert {level: (a.to_dict()["event_severity"], a.to_dict()["priority"], a.email_headers()["X-Priority"])
            for level, a in bodies.items()} == {PAGE: ("critical", "P1", "1"), WARN: ("warning", "P3", "3"),
                                                 INFO: ("info", "P5", "5")}
    assert bodies[PAGE].headline == "[PAGE] t" and bodies[INFO].headline == "[INFO] t"


def test_an_unknown_level_is_refused_naming_the_levels():
    with pytest.raises(ValueError, match="use one of page, warn, info"):
        Alert(PROMOTED, title="t", reason="r", severity="critical")


def test_cooldown_drops_repeats_and_lets_them_through_after(tmp_path):
    state, cooldown = tmp_path / "state.json", timedelta(minutes=30)
    alert = _invalid_hour()
    assert should_send(alert, state, cooldown, now=T0)
    assert not should_send(alert, state, cooldown, now=T0 + timedelta(minutes=29))
    other = Alert(HOUR_INVALID, title="t", reason="r", dedupe_key="hour_invalid:telemetry:2026-11-22T14")
    assert should_send(other, state, cooldown, now=T0 + timedelta(minutes=29))  # another key is not held back
    assert should_send(alert, state, cooldown, now=T0 + timedelta(minutes=31))
    assert not should_send(alert, state, cooldown, now=T0 + timedelta(minutes=32))


def test_forget_releases_the_key_and_a_damaged_state_never_blocks(tmp_path):
    state, cooldown = tmp_path / "state.json", timedelta(hours=1)
    alert = _invalid_hour()
    assert should_send(alert, state, cooldown, now=T0)
    forget(alert, state)
    assert should_send(alert, state, cooldown, now=T0 + timedelta(minutes=1))
    state.write_text("{not json")
    assert should_send(alert, state, cooldown, now=T0 + timedelta(minutes=2))
    assert not should_send(alert, state, cooldown, now=T0 + timedelta(minutes=3))


def _race(state: str, results) -> None:
    results.put(should_send(_invalid_hour(), state, timedelta(hours=1), now=T0))


def test_concurrent_processes_send_once(tmp_path):
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(tmp_path / "state.json"), results)) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert sorted(results.get(timeout=5) for _ in procs) == [False] * 7 + [True]


def test_log_file_holds_one_json_line_per_alert(tmp_path):
    path = tmp_path / "logs" / "alerts.jsonl"
    write_alert_log(_invalid_hour(), path)
    write_alert_log(Alert(PROMOTED, title="v7", reason="better"), path)
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["type"] == HOUR_INVALID
    assert [a.kind for a in read_alert_log(path)] == [HOUR_INVALID, PROMOTED]
    assert read_alert_log(path)[0].evidence["data_docs"] == DOCS
