"""The local stack's sidecar in several replicas of one consumer group (CONTINUUM_SERVING_REPLICAS): each a
process of its own on a port of its own, all stopped by `down serving`; a count the telemetry topic's
partitions cannot feed is refused, naming the setting and the fix."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def stack(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "docker" / "local" / "stack.py"), *args],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


def two_free_ports() -> int:
    """A port that is free, and the one above it too."""
    while True:
        with socket.socket() as first, socket.socket() as second:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port


def health(port: int) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            return orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:  # 503: up, waiting for a champion
        return orjson.loads(exc.read())


def test_two_replicas_run_on_ports_of_their_own_and_down_stops_both(tmp_path, kafka_bootstrap, topic_factory):
    port = two_free_ports()
    name = f"no-champion-{uuid.uuid4().hex[:8]}"  # no champion: they start, answer, and consume nothing
    env = {"CONTINUUM_LOCAL_DIR": str(tmp_path), "CONTINUUM_SERVING_REPLICAS": "2", "CONTINUUM_SERVING_PORT": str(port),
           "CONTINUUM_MODEL_NAME": name, "CONTINUUM_SERVING_GROUP": f"stack-{name}",
           "CONTINUUM_TOPIC_CONTROL": topic_factory("control")}
    up = stack(env, "up", "serving")
    assert up.returncode == 0, up.stdout + up.stderr
    run = tmp_path / "run"
    pids = [int((run / f"{process}.pid").read_text()) for process in ("serving", "serving-2")]
    try:
        assert len(set(pids)) == 2
        for each in (port, port + 1):
            assert health(each)["model"] == name, f"no sidecar of this stack on {each}"
        assert f"serving sidecar serving-2 up on http://127.0.0.1:{port + 1}/healthz" in up.stdout, up.stdout
        status = stack(env, "status")
        assert "serving  healthy" in status.stdout, status.stdout
    finally:
        down = stack(env, "down", "serving")
    assert down.returncode == 0 and "serving stopped" in down.stdout, down.stdout + down.stderr
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not list(run.glob("serving*.pid"))


@pytest.mark.parametrize("count", ["0", "7", "two"])
def test_a_replica_count_the_partitions_cannot_feed_is_refused_naming_the_setting(tmp_path, count):
    result = stack({"CONTINUUM_LOCAL_DIR": str(tmp_path), "CONTINUUM_SERVING_REPLICAS": count}, "up", "serving")
    assert result.returncode == 1
    assert (f"CONTINUUM_SERVING_REPLICAS={count!r}: give a whole number from 1 to 6" in result.stderr
            and "e.g. CONTINUUM_SERVING_REPLICAS=2" in result.stderr), result.stderr
    assert not (tmp_path / "run").exists() or not list((tmp_path / "run").glob("serving*.pid")), "nothing started"
