"""Rerunning an hour on the S3 endpoint, killed (SIGKILL) at each step of its publish: readers see the
old hour or the new one, never a mix, and the next rerun converges on one generation with no staged
file left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ml.contract import load_contract
from ml.lake import Lake
from ml.lake.window import Window
from ml.offload import offload_hour, window_consumer
from ml.validation import read_hour, validate_hour
from tests.integration.conftest import S3_BUCKET
from tests.integration.test_offload_screen import _event, _produce

CONTRACT = load_contract("machine_telemetry")
WINDOW = Window.hour(datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=41))
RAW, QUARANTINE = f"raw/telemetry/{WINDOW.partition_path}", f"quarantine/telemetry/{WINDOW.partition_path}"
# the steps a rerun is stopped at: before any write, between two files, right after the manifest
# switched (before the clean-up), and in the middle of the clean-up
STOPS = [("staged", "old"), ("published raw/", "old"), ("committed", "new"), ("deleted ", "new")]
RUN = """
import os, signal, sys
from datetime import timedelta
from ml.contract import load_contract
from ml.lake import Lake
from ml.lake.window import Window
from ml.offload import offload_hour, window_consumer

bootstrap, topic, uri, endpoint, hour, stop = sys.argv[1:]

def progress(step):
    if stop and step.startswith(stop):
        os.kill(os.getpid(), signal.SIGKILL)

consumer = window_consumer({"bootstrap.servers": bootstrap})
offload_hour(consumer, Lake(uri, endpoint), load_contract("machine_telemetry"), "telemetry", topic,
             Window.hour(hour), timedelta(minutes=10), max_skew=timedelta(minutes=30), progress=progress)
consumer.close()
"""


def _rerun(bootstrap: str, topic: str, lake: Lake, endpoint: str, tmp: Path, stop: str = "") -> int:
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.run([sys.executable, "-c", RUN, bootstrap, topic, lake.uri, endpoint, WINDOW.start.isoformat(), stop],
                          env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode in (0, -signal.SIGKILL), proc.stderr
    return proc.returncode


def _hour(lake: Lake) -> tuple[str, set[str]]:
    """Validate the hour and read it as a reader does: (status, event ids)."""
    outcome = validate_hour(lake, CONTRACT, "telemetry", WINDOW)
    df, problems = read_hour(lake, CONTRACT, "telemetry", json.loads(lake.read_text(f"{RAW}/_manifest.json")))
    assert problems == []
    return outcome.status, set(df["event_id"])


def _staged(tmp: Path) -> list[Path]:
    return [p for p in tmp.rglob("*") if p.is_file()]


def _round(n: int) -> list[tuple]:
    """Events new to round n, on both partitions (so the hour has two files to publish)."""
    at = WINDOW.start_ms + (n + 1) * 60_000
    return [(_event(f"r{n}-{i}", at + i), at + i, i % 2) for i in range(6)]


def test_a_rerun_killed_at_any_step_leaves_the_old_or_the_new_hour_and_the_next_run_converges(
        kafka_bootstrap, topic_factory, s3_endpoint, tmp_path):
    lake = Lake(f"s3://{S3_BUCKET}/test-{uuid.uuid4().hex[:12]}", s3_endpoint)
    topic = topic_factory("offload.rerun", partitions=2)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    _produce(kafka_bootstrap, topic, _round(0))
    assert _rerun(kafka_bootstrap, topic, lake, s3_endpoint, tmp) == 0
    status, old = _hour(lake)
    assert status == "valid" and old == {f"r0-{i}" for i in range(6)}

    for n, (stop, seen) in enumerate(STOPS, start=1):
        _produce(kafka_bootstrap, topic, _round(n))
        new = old | {f"r{n}-{i}" for i in range(6)}
        assert _rerun(kafka_bootstrap, topic, lake, s3_endpoint, tmp, stop) == -signal.SIGKILL, f"never reached {stop!r}"
        assert _hour(lake) == ("valid", old if seen == "old" else new), stop
        if stop == "staged":
            assert _staged(tmp), "a run killed before publishing leaves its staged files"
        if stop == "committed":
            generations = {key.rsplit(".", 2)[-2] for key in lake.list(RAW) if key.endswith(".parquet")}
            assert len(generations) == 2, "killed before the clean-up: the old generation is still there, unread"

        assert _rerun(kafka_bootstrap, topic, lake, s3_endpoint, tmp) == 0
        manifest = json.loads(lake.read_text(f"{RAW}/_manifest.json"))
        summary = f"{RAW}/_summary.{manifest['generation']}.json"  # the drift summary of this generation only
        assert lake.list(RAW) == sorted([f["key"] for f in manifest["files"]] + [f"{RAW}/_manifest.json", summary]), stop
        assert lake.list(QUARANTINE) == [], stop
        assert _staged(tmp) == [], f"staged files left after the rerun that followed a stop at {stop!r}"
        assert _hour(lake) == ("valid", new)
        old = new


def test_a_publish_that_fails_leaves_the_old_hour_and_no_staged_file(kafka_bootstrap, topic_factory, s3_endpoint,
                                                                     tmp_path, monkeypatch):
    lake = Lake(f"s3://{S3_BUCKET}/test-{uuid.uuid4().hex[:12]}", s3_endpoint)
    topic = topic_factory("offload.fail", partitions=2)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def offload(progress=None):
        consumer = window_consumer({"bootstrap.servers": kafka_bootstrap})
        try:
            return offload_hour(consumer, lake, CONTRACT, "telemetry", topic, WINDOW, timedelta(minutes=10),
                                max_skew=timedelta(minutes=30), progress=progress)
        finally:
            consumer.close()

    def fail(step):
        if step.startswith("published raw/"):
            raise OSError("connection reset")

    _produce(kafka_bootstrap, topic, _round(0))
    first = offload()
    _produce(kafka_bootstrap, topic, _round(1))
    with pytest.raises(OSError, match="connection reset"):
        offload(fail)
    assert _staged(tmp_path) == []
    assert json.loads(lake.read_text(f"{RAW}/_manifest.json")) == first
    assert _hour(lake) == ("valid", {f"r0-{i}" for i in range(6)})
