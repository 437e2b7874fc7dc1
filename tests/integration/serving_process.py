"""A serving sidecar for the tests and bench/serving.py: `python -m ml.serving` as a real subprocess on
an isolated set of topics, model name, consumer group and lake, and the champion moved under it the
way promote_model moves it (the alias, then a control message)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import orjson

from tests.integration.serving_models import new_model
from tests.integration.serving_topics import produce

ROOT = Path(__file__).resolve().parents[2]
STARTED: list["SidecarProcess"] = []  # this test's sidecars: their logs go in a failed test's report


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SidecarProcess:
    """`python -m ml.serving` as a real subprocess with its own env; kill(), terminate(), http()."""

    def __init__(self, env: dict, log_path: Path) -> None:
        self.port = int(env.get("CONTINUUM_SERVING_PORT") or free_port())
        self.env = {**os.environ, **env, "CONTINUUM_SERVING_PORT": str(self.port)}
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> "SidecarProcess":
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "ml.serving"], env=self.env, cwd=ROOT,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        STARTED.append(self)
        return self

    def http(self, path: str, body: bytes | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json",
                   "Authorization": f"Bearer {self.env.get('CONTINUUM_SERVING_TOKEN', '')}"} if body is not None else {}
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def wait_health(self, ready: bool = True, timeout_s: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"sidecar exited with {self.proc.returncode}:\n{self.output()}"
            try:
                code, body = self.http("/healthz")
                if (code == 200) == ready:
                    return orjson.loads(body)
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"sidecar not {'ready' if ready else 'up'} after {timeout_s} s:\n{self.output()}")

    def kill(self) -> None:
        self._report_if_failing()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def terminate(self, timeout_s: float = 60.0) -> int:
        self._report_if_failing()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout_s)

    def _report_if_failing(self) -> None:
        """Stopped while a test fails (an exception on its way out): have the sidecar log where it stands
        and its threads' stacks first, so the failed test's report shows them."""
        if sys.exc_info()[0] is not None and self.proc.poll() is None:
            self.report()

    def report(self, timeout_s: float = 5.0) -> str:
        """Ask the sidecar for its report (SIGUSR1: its status, the loop's positions, every thread's
        stack) and return its log once the report is in it (or `timeout_s` passed)."""
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and "report on request" not in self.log_path.read_text(errors="replace"):
            time.sleep(0.1)
        time.sleep(0.5)  # the stacks follow the report's line
        return self.log_path.read_text(errors="replace")

    def port_pid(self, timeout_s: float = 30.0, other_than: int | None = None) -> int:
        """The pid of the sidecar's HTTP port process (its one child), once there is one (not `other_than`)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            children = [int(c) for task in Path(f"/proc/{self.proc.pid}/task").iterdir()
                        for c in (task / "children").read_text().split()]
            children = [c for c in children if c != other_than]
            if children:
                return children[0]
            time.sleep(0.1)
        raise AssertionError(f"the sidecar has no HTTP port process after {timeout_s} s:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
        self.log.close()


def serving_env(topic_factory, settings, partitions: int = 3, **extra) -> dict:
    """A fresh set of topics, a unique model name and consumer group, and a lake of its own for the
    verdicts: the env of an isolated sidecar."""
    import mlflow

    from ml.lake import Lake

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    env = {
        "CONTINUUM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "CONTINUUM_MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "CONTINUUM_MODEL_NAME": new_model(client),
        "CONTINUUM_LAKE_URI": tempfile.mkdtemp(prefix="continuum-serving-lake-"),
        "CONTINUUM_SERVING_GROUP": f"test-serving-{uuid.uuid4().hex[:8]}",
        "CONTINUUM_SERVING_POLL_S": "2",
        "CONTINUUM_SERVING_TOKEN": uuid.uuid4().hex,
        "CONTINUUM_TOPIC_TELEMETRY": topic_factory("telemetry", partitions),
        "CONTINUUM_TOPIC_PREDICTIONS": topic_factory("predictions", partitions),
        "CONTINUUM_TOPIC_ALERTS": topic_factory("alerts"),
        "CONTINUUM_TOPIC_DLQ": topic_factory("dlq"),
        "CONTINUUM_TOPIC_CONTROL": topic_factory("control"),
        "CONTINUUM_TOPIC_PREDICTIONS_SHADOW": topic_factory("shadow"),
        **{k: str(v) for k, v in extra.items()},
    }
    return {"env": env, "client": client, "name": env["CONTINUUM_MODEL_NAME"], "bootstrap": settings.kafka_bootstrap,
            "lake": Lake(env["CONTINUUM_LAKE_URI"])}


def promote(env: dict, client, version: str, kind: str = "promotion") -> None:
    """Move champion the way promote_model does (`set_champion`, then a control message); whether the
    sidecar serves it is up to the version's verdict in the lake (see `register`)."""
    from ml.lake import Lake
    from ml.registry import set_champion

    name = env["CONTINUUM_MODEL_NAME"]
    set_champion(client, name, version, "test", "test", Lake(env["CONTINUUM_LAKE_URI"]), kind=kind)
    send_control(env, {"type": kind, "model": name, "alias": "champion", "version": version, "reason": "test"})


def send_control(env: dict, message: dict) -> None:
    produce(env["CONTINUUM_KAFKA_BOOTSTRAP"], env["CONTINUUM_TOPIC_CONTROL"],
            [(env["CONTINUUM_MODEL_NAME"].encode(), orjson.dumps(message), None)])
