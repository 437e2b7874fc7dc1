"""An alert goes out once to a real webhook, a real SMTP server, the alerts topic and the log file; a
repeat within the cooldown goes nowhere, and a broken channel does not stop the others."""

from __future__ import annotations

import html
import json
import uuid

import pytest

from ml.alerts import HOUR_INVALID, Alert, read_alert_log
from plugins.notifiers.on_call import FAILED, SENT, SUPPRESSED, notify_on_call
from tests.integration.alert_support import free_port, mail, use_mail, use_webhook, webhook  # noqa: F401

DOCS = "http://127.0.0.1:9000/continuum-lake/validation/telemetry/dt=2026-11-22/hour=13/docs/index.html"


def _alert() -> Alert:
    return Alert(HOUR_INVALID, title="telemetry hour 2026-11-22T13:00Z is invalid",
                 reason="invalid: 1200 rows, 1 critical failures\nCRITICAL event_id has 12 duplicates <unique>",
                 evidence={"data_docs": DOCS, "manifest": "s3://continuum-lake/raw/telemetry/x/_manifest.json"},
                 subject="telemetry", dedupe_key=f"hour_invalid:telemetry:{uuid.uuid4().hex}")


@pytest.fixture
def alert_env(monkeypatch, tmp_path):
    """A fresh cooldown state and alert log, and no channel configured until a test adds one."""
    for var in ("AIRFLOW_CONN_ALERT_WEBHOOK", "AIRFLOW_CONN_SMTP_DEFAULT", "CONTINUUM_ALERT_EMAIL_TO",
                "CONTINUUM_ALERT_LOG_PATH", "CONTINUUM_ALERT_TO_TOPIC"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CONTINUUM_ALERT_STATE_PATH", str(tmp_path / "alerts" / "state.json"))
    monkeypatch.setenv("CONTINUUM_ALERT_COOLDOWN_MINUTES", "60")
    return tmp_path


def _topic_records(bootstrap: str, topic: str) -> list:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, low)])
        records = []
        while len(records) < high - low:
            msg = consumer.poll(10)
            assert msg is not None, f"only {len(records)} of {high - low} records read from {topic}"
            records.append((msg.key().decode(), json.loads(msg.value())))
        return records
    finally:
        consumer.close()


def test_an_alert_reaches_every_channel_once(alert_env, monkeypatch, webhook, mail, kafka_bootstrap, topic_factory):
    topic = topic_factory("alerts")
    use_webhook(monkeypatch, webhook.url)
    use_mail(monkeypatch, mail)
    monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT",
                       json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": kafka_bootstrap}}))
    monkeypatch.setenv("CONTINUUM_TOPIC_ALERTS", topic)
    monkeypatch.setenv("CONTINUUM_ALERT_TO_TOPIC", "true")
    monkeypatch.setenv("CONTINUUM_ALERT_LOG_PATH", str(alert_env / "logs" / "alerts.jsonl"))
    alert = _alert()

    assert notify_on_call(alert) == {"webhook": SENT, "email": SENT, "topic": SENT, "log": SENT}

    [hook] = webhook.bodies
    assert hook["path"] == "/hook" and hook["content_type"] == "application/json"
    assert hook["json"]["type"] == HOUR_INVALID and hook["json"]["reason"] == alert.reason
    assert hook["json"]["evidence"]["data_docs"] == DOCS and DOCS in hook["json"]["text"]
    [message] = mail.messages
    assert message["Subject"] == "[continuum] [WARN] telemetry hour 2026-11-22T13:00Z is invalid"
    assert (message["X-Priority"], message["Importance"]) == ("3", "normal")
    assert (hook["json"]["severity"], hook["json"]["event_severity"]) == ("warn", "warning")
    assert message["To"] == "oncall@continuum.test" and message["From"] == "continuum@continuum.test"
    body = html.unescape(mail.body(message))
    assert "CRITICAL event_id has 12 duplicates <unique>" in body and DOCS in body
    [(key, record)] = _topic_records(kafka_bootstrap, topic)
    assert key == "telemetry" and record["dedupe_key"] == alert.dedupe_key and record["evidence"]["data_docs"] == DOCS
    assert [a.dedupe_key for a in read_alert_log(alert_env / "logs" / "alerts.jsonl")] == [alert.dedupe_key]

    # the same alert again within the cooldown: nothing more anywhere
    again = notify_on_call(_alert_like(alert))
    assert again == {"webhook": SUPPRESSED, "email": SUPPRESSED, "topic": SUPPRESSED, "log": SUPPRESSED}
    assert len(webhook.bodies) == 1 and len(mail.messages) == 1
    assert len(_topic_records(kafka_bootstrap, topic)) == 1
    assert len(read_alert_log(alert_env / "logs" / "alerts.jsonl")) == 1


def _alert_like(alert: Alert) -> Alert:
    """A new occurrence of the same problem: same dedupe key, its own time."""
    return Alert(alert.kind, title=alert.title, reason=alert.reason, evidence=dict(alert.evidence),
                 subject=alert.subject, dedupe_key=alert.dedupe_key)


def test_a_broken_webhook_does_not_stop_the_email(alert_env, monkeypatch, mail):
    use_webhook(monkeypatch, f"http://127.0.0.1:{free_port()}/nobody-listens")
    use_mail(monkeypatch, mail)
    assert notify_on_call(_alert()) == {"webhook": FAILED, "email": SENT}
    [message] = mail.messages
    assert "telemetry hour 2026-11-22T13:00Z is invalid" in message["Subject"]


def test_an_alert_no_channel_delivered_is_tried_again(alert_env, monkeypatch, webhook):
    use_webhook(monkeypatch, f"http://127.0.0.1:{free_port()}/nobody-listens")
    alert = _alert()
    assert notify_on_call(alert) == {"webhook": FAILED}
    use_webhook(monkeypatch, webhook.url)  # the endpoint is back: the repeat is not held by the cooldown
    assert notify_on_call(_alert_like(alert)) == {"webhook": SENT}
    assert [b["json"]["dedupe_key"] for b in webhook.bodies] == [alert.dedupe_key]


def test_without_channels_nothing_is_sent_or_remembered(alert_env):
    assert notify_on_call(_alert()) == {}
    assert not (alert_env / "alerts" / "state.json").exists()
