"""Traffic for the fault suite and what it measures: a steady live stream whose every event the broker
acknowledged is known by id (`AckedFeeder`), a reader that keeps count of the predictions of each event
id as they arrive (`Watcher`), and the record of one fault (`Fault`)."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import asdict, dataclass, field

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition


@dataclass
class Fault:
    """One fault and what it cost: events acknowledged and never scored (or rows of an hour missing),
    repeats (predictions of an event scored twice, rows twice, versions registered twice, aliases moved
    twice, extra audit records), lake files a reader could see half-written or out of step with their
    manifest, and the seconds from the service's return (or the failure) until the system was whole."""

    name: str
    lost: int
    duplicates: int
    partial_files: int
    recovery_s: float | None
    survived: bool
    detail: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["recovery_s"] = None if self.recovery_s is None else round(self.recovery_s, 2)
        return out


class AckedFeeder:
    """Sends live telemetry at `rate` events/s in the background, each event tagged with the phase it was
    sent in; `acked` holds the ids the broker acknowledged, by phase, `sent_at` when each was sent."""

    def __init__(self, bootstrap: str, topic: str, records: list, rate: float, tick_s: float = 0.05) -> None:
        self.topic, self.records, self.per_tick, self.tick_s = topic, records, max(1, round(rate * tick_s)), tick_s
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})
        self.phase = "start"
        self.acked: dict[str, str] = {}
        self.failed: dict[str, str] = {}
        self.sent_at: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-feeder", daemon=True)

    def start(self) -> "AckedFeeder":
        self._thread.start()
        return self

    def ids(self, *phases: str) -> set[str]:
        return {e for e, phase in list(self.acked.items()) if not phases or phase in phases}

    def stop(self, timeout_s: float = 120.0) -> None:
        """Stop sending and wait until every event sent is acknowledged or has failed."""
        self._stop.set()
        self._thread.join(timeout_s)
        self.producer.flush(timeout_s)

    def _run(self) -> None:
        for i in range(0, len(self.records), self.per_tick):
            if self._stop.is_set():
                return
            for key, value, _ in self.records[i:i + self.per_tick]:
                event_id = orjson.loads(value)["event_id"]
                self.sent_at[event_id] = time.monotonic()
                self.producer.produce(self.topic, value, key, on_delivery=self._delivered(event_id, self.phase))
            self.producer.poll(0)
            time.sleep(self.tick_s)

    def _delivered(self, event_id: str, phase: str):
        def done(err, msg) -> None:
            if err is None:
                self.acked[event_id] = phase
            else:
                self.failed[event_id] = str(err)
        return done


class Watcher:
    """Reads a predictions topic from its start until stopped: how many predictions each event id got,
    when its first arrived (monotonic), and when each model version's first prediction arrived."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"fault-watch-{uuid.uuid4().hex}",
                                  "enable.auto.commit": False})
        partitions = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self.consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        self.count: dict[str, int] = {}
        self.first: dict[str, float] = {}
        self.score: dict[tuple[str, str], float] = {}
        self.changed: list[str] = []  # event ids scored again by the same version with another score
        self.version_at: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for msg in self.consumer.consume(5000, 0.2):
                    if msg.error() is not None:
                        continue
                    p, now = orjson.loads(msg.value()), time.monotonic()
                    event_id, version = p["event_id"], str(p["model_version"])
                    self.count[event_id] = self.count.get(event_id, 0) + 1
                    self.first.setdefault(event_id, now)
                    self.version_at.setdefault(version, now)
                    if self.score.setdefault((event_id, version), p["score"]) != p["score"]:
                        self.changed.append(event_id)
        finally:
            self.consumer.close()

    def wait_for(self, ids: set[str], timeout_s: float) -> set[str]:
        """Wait until every id has a prediction; returns those that still have none."""
        deadline = time.monotonic() + timeout_s
        while True:
            missing = {e for e in ids if e not in self.count}
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.2)

    def wait_version(self, version: str, timeout_s: float) -> float | None:
        """The time the first prediction by `version` arrived (waiting for it), None if none did in time."""
        deadline = time.monotonic() + timeout_s
        while version not in self.version_at and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.version_at.get(version)

    def first_after(self, sent_at: dict[str, float], since: float, timeout_s: float) -> float | None:
        """When the first prediction of an event sent after `since` arrived, None if none did in time."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            times = [self.first[e] for e, t in list(sent_at.items()) if t >= since and e in self.first]
            if times:
                return min(times)
            time.sleep(0.1)
        return None

    def duplicates(self, ids: set[str]) -> int:
        return sum(self.count.get(e, 0) - 1 for e in ids if self.count.get(e, 0) > 1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
