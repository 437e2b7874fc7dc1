"""The Kafka side of the simulator: a batching producer that stamps each record with its event time.

Records go out with an explicit key (the device) and timestamp (event time in ms); the producer
batches and compresses (lz4) and is flushed once, at the end, never per message. Delivery reports
come back only for failures, which are counted and reported. A broker that does not answer fails
fast, naming the servers and the setting to change.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient

from ml.kafka import simulator_producer
from ml.settings import ENV_PREFIX
from ml.simulate.stream import Batch

log = logging.getLogger(__name__)

class BrokerError(RuntimeError):
    """Kafka is unreachable or a topic is missing; the message says what to fix."""


def check_broker(bootstrap: str, topics: list[str], timeout_s: float = 10.0) -> None:
    """Fail within timeout_s if the broker does not answer or a topic does not exist (a topic created a
    moment ago may take a little while to appear in the metadata, so missing ones are asked for again)."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "logger": log})
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            metadata = admin.list_topics(timeout=max(deadline - time.monotonic(), 0.1))
        except KafkaException as exc:
            raise BrokerError(
                f"cannot reach Kafka at {bootstrap} within {timeout_s:g} s ({exc.args[0].str()}); start it "
                f"(python docker/local/stack.py up kafka) or point {ENV_PREFIX}KAFKA_BOOTSTRAP / --bootstrap at it"
            ) from None
        missing = [t for t in topics if t not in metadata.topics]
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise BrokerError(f"topic(s) {', '.join(missing)} do not exist on {bootstrap}; create them first")
        time.sleep(0.2)


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    undelivered: int = 0  # still queued when the final flush timed out
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.undelivered == 0


class KafkaSink:
    """Produces simulator batches to their topics; `close()` flushes once and reports."""

    def __init__(self, bootstrap: str, topics: dict[str, str], **config) -> None:
        self.topics = topics
        self.report = DeliveryReport()
        self._producer = Producer({
            **simulator_producer(bootstrap), **config,
            "on_delivery": self._on_delivery, "logger": log,
        })

    def send(self, batch: Batch) -> None:
        topic = self.topics[batch.topic]
        produce, poll = self._producer.produce, self._producer.poll
        # positional (topic, value, key, partition, callback, on_delivery, timestamp): a third cheaper than
        # keywords; partition -1 lets the partitioner place the record by its key
        for key, value, ts in zip(batch.keys, batch.values, batch.timestamps):
            try:
                produce(topic, value, key, -1, None, None, ts)
            except BufferError:  # the local queue is full: serve delivery reports until there is room
                while True:
                    poll(0.05)
                    try:
                        produce(topic, value, key, -1, None, None, ts)
                        break
                    except BufferError:
                        continue
        poll(0)
        self.report.sent += len(batch)

    def close(self, timeout_s: float = 120.0) -> DeliveryReport:
        self.report.undelivered = self._producer.flush(timeout_s)
        return self.report

    def _on_delivery(self, err, msg) -> None:
        if err is not None:
            self.report.failed += 1
            if len(self.report.errors) < 5:
                self.report.errors.append(f"{msg.topic()}: {err.str()}")
