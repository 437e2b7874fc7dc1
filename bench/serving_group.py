"""bench/serving.py's replica comparison: the same events scored by one sidecar, then by two replicas of one
consumer group, one after the other in the same run.

Both read one topic of GROUP_PARTITIONS partitions (the stack's telemetry topic has 6, so two replicas own
three each), each with a consumer group, a registered model and a predictions topic of its own. Every
process starts before the first measurement and waits, not ready, for a champion: promoting one group's
model starts that group, so process start-up is never measured and the two measurements follow each other
within seconds. The events are written in a Kafka transaction left open, which the sidecars' consumers
(read_committed, the client's default) do not see: the two replicas are promoted first and the
transaction is committed once they share the partitions, so both score from the first event instead of
one taking everything while the other still loads its model; the single sidecar follows on the same
events. Throughput is counted as in bench/serving.py: the middle 80% of the outputs by broker append time.
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also when `make bench` runs it (it does nothing)
from ml.lake import Lake  # noqa: E402
from tests.integration.serving_models import new_model, register  # noqa: E402
from tests.integration.serving_process import SidecarProcess, promote  # noqa: E402
from tests.integration.serving_topics import read_topic  # noqa: E402

GROUP_PARTITIONS = 6
APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}


def group_topics(admin: AdminClient, run: str) -> dict[str, str]:
    """The comparison's input (GROUP_PARTITIONS partitions) and a predictions topic for each group."""
    names = {k: f"bench.serving.{run}.{k}" for k in ("group-in", "group-pred1", "group-pred2")}
    topics = [NewTopic(name, num_partitions=GROUP_PARTITIONS, replication_factor=1, config=APPEND_TIME)
              for name in names.values()]
    for fut in admin.create_topics(topics).values():
        fut.result(30)
    return names


class ReplicaComparison:
    """One sidecar and a group of two, started up front on `topics` (the run's own, plus `group_topics`),
    each group scoring `booster` registered as a model of its own; `measure` runs them in turn."""

    def __init__(self, settings, client, booster, topics: dict, logs: Path) -> None:
        self.bootstrap, self.client, self.topics = settings.kafka_bootstrap, client, topics
        self.groups: list[tuple[dict, str, list[SidecarProcess]]] = []
        self.held: Producer | None = None  # the open transaction holding the input's events
        for replicas, pred in ((1, topics["group-pred1"]), (2, topics["group-pred2"])):
            model = new_model(client)
            lake = tempfile.mkdtemp(prefix="bench-serving-group-lake-")
            version = register(client, model, booster, lake=Lake(lake))
            env = {"CONTINUUM_KAFKA_BOOTSTRAP": self.bootstrap,
                   "CONTINUUM_MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
                   "CONTINUUM_MODEL_NAME": model, "CONTINUUM_LAKE_URI": lake,
                   "CONTINUUM_SERVING_GROUP": f"bench-group-{uuid.uuid4().hex[:8]}",
                   "CONTINUUM_TOPIC_TELEMETRY": topics["group-in"], "CONTINUUM_TOPIC_PREDICTIONS": pred,
                   "CONTINUUM_TOPIC_ALERTS": topics["alerts"], "CONTINUUM_TOPIC_DLQ": topics["dlq"],
                   "CONTINUUM_TOPIC_CONTROL": topics["control"],
                   "CONTINUUM_TOPIC_PREDICTIONS_SHADOW": topics["shadow"]}
            processes = [SidecarProcess(env, logs / f"bench-serving-group{replicas}-{i}.log")
                         for i in range(replicas)]
            self.groups.append((env, version, processes))

    def start(self, records: list) -> "ReplicaComparison":
        """Write `records` (key, value, timestamp) to the input topic, held in an open transaction, and start
        every process."""
        self.held = hold(self.bootstrap, self.topics["group-in"], records)
        for _, _, processes in self.groups:
            for process in processes:
                process.start()
        for _, _, processes in self.groups:
            for process in processes:
                process.wait_health(ready=False, timeout_s=120)
        return self

    def measure(self, n: int, span_eps, scored) -> dict[str, float]:
        """The two replicas, then the single sidecar, score the `n` held events: events per second of each,
        their ratio, and the fewest partitions a replica owned when the events were released."""
        figures = {}
        for (env, version, processes), key in zip(reversed(self.groups), ("two_replica_eps", "one_replica_eps")):
            promote(env, self.client, version)
            if len(processes) > 1:
                figures["two_replica_partitions_min"] = min(map(len, split(processes)))
                self.held.commit_transaction(60)  # released: every replica owns its share already
                self.held = None
            deadline = time.monotonic() + 600
            while sum(scored(p) for p in processes) < n and time.monotonic() < deadline:
                time.sleep(0.2)
            figures[key] = span_eps(read_topic(self.bootstrap, env["CONTINUUM_TOPIC_PREDICTIONS"],
                                               until=lambda r: len(r) >= n))
            for process in processes:
                assert process.terminate() == 0, process.output()
        figures["two_replica_ratio"] = figures["two_replica_eps"] / figures["one_replica_eps"]
        return figures

    def close(self) -> None:
        if self.held is not None:  # never released: the events go, unseen
            self.held.abort_transaction(60)
        for _, _, processes in self.groups:
            for process in processes:
                if process.proc is not None:
                    process.close()


def hold(bootstrap: str, topic: str, records: list) -> Producer:
    """Produce `records` in a transaction and leave it open: a read_committed consumer sees none of them
    until `commit_transaction()`."""
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"bench-hold-{uuid.uuid4().hex}",
                         "transaction.timeout.ms": 600_000, "linger.ms": 20, "compression.type": "lz4",
                         "queue.buffering.max.messages": 1_000_000})
    producer.init_transactions(30)
    producer.begin_transaction()
    for key, value, _ in records:
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0
    return producer


def split(processes: list[SidecarProcess], timeout_s: float = 120.0) -> list[set[int]]:
    """Wait until every replica owns some of the input's partitions and each partition has one owner."""
    deadline = time.monotonic() + timeout_s
    while True:
        owned = [set(p.wait_health(timeout_s=timeout_s)["partitions"]) for p in processes]
        if all(owned) and sum(map(len, owned)) == GROUP_PARTITIONS:
            return owned
        assert time.monotonic() < deadline, f"the replicas own {owned}"
        time.sleep(0.2)
