"""The HTTP port runs in a process of its own: it holds no credential but its token, scores /predict with
the very version the stream serves, follows a promotion, is started again when it dies (the stream
untouched), and never outlives its sidecar."""

from __future__ import annotations

import os
import signal
import time

import orjson
import pytest

from ml.serving.port import listen
from tests.integration.serving_models import two_versions
from tests.integration.serving_process import SidecarProcess, promote, serving_env
from tests.integration.serving_topics import Feeder, events, read_topic, values

pytestmark = pytest.mark.integration


def predicted_version(sidecar: SidecarProcess, body: bytes, want: str, timeout_s: float = 30.0) -> str:
    """The version /predict answers with, once it is `want` (or `timeout_s` passed)."""
    deadline, got = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        try:
            code, answer = sidecar.http("/predict", body)
            got = orjson.loads(answer)["predictions"][0]["model_version"] if code == 200 else (code, answer)
        except OSError as exc:  # between two port processes a connection may be refused or cut
            got = exc
        if got == want:
            return got
        time.sleep(0.2)
    return got


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.timeout(300)
def test_the_port_process_follows_the_champion_is_restarted_and_dies_with_its_sidecar(
        topic_factory, settings, mlflow_uri, tmp_path):
    ctx = serving_env(topic_factory, settings)
    env, client, bootstrap = ctx["env"], ctx["client"], ctx["bootstrap"]
    v1, v2 = two_versions(ctx)
    promote(env, client, v1)
    sidecar = SidecarProcess(env, tmp_path / "sidecar.log").start()
    try:
        sidecar.wait_health()
        good = events(3000, seed=5)
        body = good[0][1]
        assert predicted_version(sidecar, body, v1) == v1
        port = sidecar.port_pid()
        environ = dict(line.split("=", 1) for line in open(f"/proc/{port}/environ").read().split("\0") if "=" in line)
        sidecar_environ = open(f"/proc/{sidecar.proc.pid}/environ").read()
        assert "MLFLOW_TRACKING_PASSWORD=" in sidecar_environ, "the test's sidecar logs in to MLflow"
        assert "MLFLOW_TRACKING_PASSWORD" not in environ and "MLFLOW_TRACKING_USERNAME" not in environ
        assert environ["CONTINUUM_SERVING_TOKEN"] == env["CONTINUUM_SERVING_TOKEN"], "the one secret it needs"
        feeder = Feeder(bootstrap, env["CONTINUUM_TOPIC_TELEMETRY"], good, per_tick=100, tick_s=0.1).start()
        feeder.wait(sent=1000)
        os.kill(port, signal.SIGKILL)  # the port dies mid-stream: the sidecar starts another
        again = sidecar.port_pid(other_than=port)
        assert again != port and sidecar.proc.poll() is None
        assert predicted_version(sidecar, body, v1) == v1, "the new port process was handed the champion"
        promote(env, client, v2)
        assert predicted_version(sidecar, body, v2) == v2, "the port process follows a promotion"
        feeder.wait()
        rows = read_topic(bootstrap, env["CONTINUUM_TOPIC_PREDICTIONS"], until=lambda r: len(r) >= len(good))
        scored = sorted(p["event_id"] for p in values(rows))
        assert scored == sorted(orjson.loads(v)["event_id"] for _, v, _ in good), "each event scored exactly once"
        health = sidecar.wait_health()
        assert health["champion"] == v2 and health["ready"] is True
        assert "exited with -9; starting another" in sidecar.output()

        sidecar.kill()  # the sidecar dies without a word: the kernel ends its port process
        deadline = time.monotonic() + 10
        while alive(again) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(again), "the port process outlived its sidecar"
        listen("127.0.0.1", sidecar.port, wait_s=10).close()  # and the port is free for the next sidecar
    finally:
        sidecar.close()
