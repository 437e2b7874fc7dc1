"""Shared by the serving integration tests and bench/serving.py: tiny registered models, simulated
events, a sidecar subprocess, and reading a topic back."""

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
from confluent_kafka import Consumer, Producer, TopicPartition

from ml.contract import load_contract, model_frame
from ml.simulate import SimConfig, Simulator

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = load_contract("machine_telemetry")
DAY = 86_400_000
START_MS = 1_795_000_000_000  # a fixed past day: replays are reproducible


def train_booster(seed: int = 0, rounds: int = 8, events: int = 4000):
    """A small XGBoost model on simulated events, trained the way ml/train does: model_frame, categorical."""
    import xgboost as xgb

    sim = Simulator(CONTRACT, SimConfig(devices=50, rate=events / 3600, seed=seed))
    frame = sim.frame(START_MS, START_MS + 3_600_000)
    dtrain = xgb.DMatrix(model_frame(CONTRACT, frame), label=frame[CONTRACT.label.field], enable_categorical=True)
    return xgb.train({"objective": "binary:logistic", "max_depth": 4, "eta": 0.3, "seed": seed}, dtrain, rounds)


def register(client, name: str, booster=None, threshold: float | None = None, corrupt: bool = False,
             lake=None, approve: bool = True, in_run: bool = False) -> str:
    """Log a booster with the gate inputs training logs (or, with corrupt, a model whose ubj file is
    garbage) and register it as a new version; with a lake, judge it as promote_model does and, unless
    approve is false, approve it, so it may serve. With in_run (and corrupt) the model's files are the
    run's artifacts under `model/`, which a later `client.log_artifact` can overwrite."""
    import mlflow
    import mlflow.xgboost

    from ml.registry.trust import log_gate_inputs

    booster = booster if booster is not None else train_booster()
    with mlflow.start_run(experiment_id=_experiment(client)) as run:
        mlflow.log_metrics(holdout_metrics(booster))
        log_gate_inputs(None, "valid", booster)
        if corrupt or in_run:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "model"
                mlflow.xgboost.save_model(booster, str(path), model_format="ubj", pip_requirements=["xgboost"])
                if corrupt:
                    (path / "model.ubj").write_bytes(b"this is not an xgboost model" * 10)
                mlflow.log_artifacts(str(path), "model")
            version = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id).version
        else:
            info = mlflow.xgboost.log_model(booster, name="model", model_format="ubj", registered_model_name=name,
                                            pip_requirements=["xgboost"])
            version = info.registered_model_version
    if threshold is not None:
        client.set_model_version_tag(name, str(version), "threshold", str(threshold))
    if lake is not None:
        judge(client, name, str(version), lake, approve)
    return str(version)


def holdout_metrics(booster) -> dict[str, float]:
    """The figures training logs for a candidate, on a simulated hour the test boosters never saw."""
    from ml.evaluate import evaluate

    holdout = Simulator(CONTRACT, SimConfig(devices=50, rate=2000 / 3600, seed=99)).frame(START_MS + DAY,
                                                                                         START_MS + DAY + 3_600_000)
    return evaluate(booster, CONTRACT, holdout, 0.5)


def judge(client, name: str, version: str, lake, approve: bool = True) -> dict:
    """The verdict of promote_model's gates on a version (policy manual), approved by "test" unless not."""
    from ml.registry import champion
    from ml.registry.approval import MANUAL
    from ml.registry.trust import judge_version, record_approval
    from ml.settings import load_settings

    settings = load_settings(approval_policy="manual")
    current = champion(client, name)
    record = judge_version(client.tracking_uri, lake, name, version, settings.gates,
                           current.version if current else None)
    assert record["passed"], record["gates"]
    if approve:
        record = record_approval(lake, name, version, "approved", "test", MANUAL, "approved by the test")
    return record


def _experiment(client) -> str:
    found = client.get_experiment_by_name("continuum-tests")
    return found.experiment_id if found else client.create_experiment("continuum-tests")


def new_model(client) -> str:
    name = f"test-serve-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    return name


def events(n: int, seed: int = 1, devices: int = 40, start_ms: int = START_MS, live: bool = False) -> list:
    """n simulated telemetry records as (key, value, timestamp); with live, stamped now (for latency)."""
    sim = Simulator(CONTRACT, SimConfig(devices=devices, rate=max(n, 1) / 600, seed=seed))
    out = []
    for batch in sim.replay(start_ms, start_ms + 600_000):
        if batch.topic == "telemetry":
            out += list(zip(batch.keys, batch.values, batch.timestamps))
    out = out[:n]
    if live:
        now = int(time.time() * 1000)
        out = [(k, v, now) for k, v, _ in out]
    return out


def produce(bootstrap: str, topic: str, records: list, **config) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "compression.type": "lz4",
                         "queue.buffering.max.messages": 1_000_000, **config})
    for key, value, ts in records:
        while True:
            try:
                producer.produce(topic, value, key, timestamp=ts) if ts else producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0


def read_topic(bootstrap: str, topic: str, until=lambda rows: False, timeout_s: float = 60.0,
               stall_s: float = 10.0) -> list:
    """Every record of a topic as dicts {key, value, headers, partition, offset, timestamp}, reading until
    `until(rows)` is true or the timeout runs out.

    On a loaded host a fresh client now and then stops fetching a partition it was assigned (seen in CI:
    nothing for 60 s, while the records were there). When nothing new arrives for `stall_s` the reader
    starts a new client at the next offset of each partition, so no record is read twice or skipped."""
    rows, deadline = [], time.monotonic() + timeout_s
    next_offset: dict[int, int] = {}
    partitions = None
    while time.monotonic() < deadline and not until(rows):
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex}",
                             "enable.auto.commit": False})
        try:
            if partitions is None:
                partitions = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
            consumer.assign([TopicPartition(topic, p, next_offset.get(p, 0)) for p in partitions])
            give_up = min(deadline, time.monotonic() + stall_s)  # this client's, moved on by every record
            while time.monotonic() < give_up and not until(rows):
                got = [msg for msg in consumer.consume(10_000, 0.5) if msg.error() is None]
                for msg in got:
                    next_offset[msg.partition()] = msg.offset() + 1
                    rows.append({"key": msg.key(), "value": msg.value(), "headers": dict(msg.headers() or []),
                                 "partition": msg.partition(), "offset": msg.offset(),
                                 "timestamp": msg.timestamp()[1]})
                if got:
                    give_up = min(deadline, time.monotonic() + stall_s)
        finally:
            consumer.close()
    return rows


def values(rows: list) -> list[dict]:
    return [orjson.loads(r["value"]) for r in rows]


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
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def terminate(self, timeout_s: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout_s)

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


class Feeder:
    """Produces live-stamped events in the background, `per_tick` every `tick_s`, until stopped."""

    def __init__(self, bootstrap: str, topic: str, records: list, per_tick: int = 100, tick_s: float = 0.05) -> None:
        import threading

        self.bootstrap, self.topic, self.records, self.per_tick, self.tick_s = bootstrap, topic, records, per_tick, tick_s
        self.sent = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Feeder":
        self._thread.start()
        return self

    def wait(self, sent: int | None = None, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.sent < (len(self.records) if sent is None else sent) and time.monotonic() < deadline:
            time.sleep(0.02)
        if sent is None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 2})
        for i in range(0, len(self.records), self.per_tick):
            for key, value, _ in self.records[i:i + self.per_tick]:
                producer.produce(self.topic, value, key)  # stamped now: live traffic
            producer.flush(30)
            self.sent = min(i + self.per_tick, len(self.records))
            time.sleep(self.tick_s)
