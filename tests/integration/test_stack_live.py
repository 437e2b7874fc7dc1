"""The local stack's live stream (`make live`, the end of `make demo`): the real simulator, run and stopped by
`stack.py` as a service, sends events stamped with the time they are sent, so the hourly DAGs keep finding
new hours after a demo's replayed history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def stack(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "docker" / "local" / "stack.py"), *args],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


def test_the_live_stream_runs_in_real_time_until_stopped(kafka_bootstrap, topic_factory, tmp_path):
    from confluent_kafka import Consumer, TopicPartition

    telemetry, outcomes = topic_factory("live.telemetry", partitions=2), topic_factory("live.outcomes")
    env = {"CONTINUUM_LOCAL_DIR": str(tmp_path), "CONTINUUM_KAFKA_BOOTSTRAP": kafka_bootstrap,
           "CONTINUUM_TOPIC_TELEMETRY": telemetry, "CONTINUUM_TOPIC_OUTCOMES": outcomes, "CONTINUUM_LIVE_RATE": "20"}
    started_ms = int(time.time() * 1000)
    up = stack(env, "up", "live")
    assert up.returncode == 0, up.stdout + up.stderr
    pid = int((tmp_path / "run" / "live.pid").read_text())
    try:
        consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"t-{uuid.uuid4().hex[:8]}",
                             "enable.auto.commit": False})
        consumer.assign([TopicPartition(telemetry, p, 0) for p in range(2)])
        events, deadline = [], time.monotonic() + 60
        while len(events) < 40 and time.monotonic() < deadline:
            for msg in consumer.consume(100, 1.0):
                if msg.error() is None:
                    events.append((msg.timestamp()[1], json.loads(msg.value())))
        consumer.close()
        assert len(events) >= 40, f"{len(events)} events in 60 s at 20/s; log: {(tmp_path / 'logs' / 'live.log').read_text()}"
        ids = [e["event_id"] for _, e in events]
        assert len(set(ids)) == len(ids), "every live event has its own id"
        from datetime import datetime

        for kafka_ms, event in events:
            event_ms = datetime.fromisoformat(event["ts"].replace("Z", "+00:00")).timestamp() * 1000
            assert kafka_ms >= started_ms - 1000, "stamped with the time it is sent, not replayed history"
            assert abs(kafka_ms - event_ms) <= 1000, "its event time is its Kafka timestamp, as the offload expects"
        status = stack(env, "status")
        assert "live     healthy" in status.stdout, status.stdout
    finally:
        down = stack(env, "down", "live")
    assert down.returncode == 0 and "live stopped" in down.stdout, down.stdout + down.stderr
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not (tmp_path / "run" / "live.pid").exists()


def test_a_bad_rate_is_refused_naming_the_setting_and_the_fix(tmp_path, kafka_bootstrap):
    result = stack({"CONTINUUM_LOCAL_DIR": str(tmp_path), "CONTINUUM_LIVE_RATE": "-1"}, "up", "live")
    assert result.returncode == 1
    assert "CONTINUUM_LIVE_RATE='-1': give a number above 0 (e.g. CONTINUUM_LIVE_RATE=5)" in result.stderr, result.stderr
    assert not (tmp_path / "run" / "live.pid").exists(), "nothing started"

