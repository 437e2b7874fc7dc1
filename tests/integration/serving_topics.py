"""Kafka for the serving tests and bench/serving.py: simulated telemetry records, producing them (at
once, or live in the background with `Feeder`) and reading a topic back."""

from __future__ import annotations

import time
import uuid

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition

from ml.simulate import SimConfig, Simulator
from tests.integration.serving_models import CONTRACT, START_MS


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


class Feeder:
    """Produces live-stamped events in the background, `per_tick` every `tick_s`, until all are sent or
    `stop()`: then exactly the first `sent` records were produced."""

    def __init__(self, bootstrap: str, topic: str, records: list, per_tick: int = 100, tick_s: float = 0.05) -> None:
        import threading

        self.bootstrap, self.topic, self.records, self.per_tick, self.tick_s = bootstrap, topic, records, per_tick, tick_s
        self.sent = 0
        self._stop = threading.Event()
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

    def stop(self) -> int:
        """Stop sending; returns how many records were sent (all of them flushed)."""
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(60)
        return self.sent

    def _run(self) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 2})
        for i in range(0, len(self.records), self.per_tick):
            if self._stop.is_set():
                return
            for key, value, _ in self.records[i:i + self.per_tick]:
                producer.produce(self.topic, value, key)  # stamped now: live traffic
            producer.flush(30)
            self.sent = min(i + self.per_tick, len(self.records))
            time.sleep(self.tick_s)
