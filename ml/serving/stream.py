"""The scoring loop: consume telemetry in micro-batches, score, produce, commit only what is delivered.

At-least-once: every output record of a batch carries that batch's delivery callback, and a batch's
offsets are committed only once all of its records are acknowledged by the broker and every earlier
batch is too, so a crash at any point loses nothing and a restart repeats at most the batches in flight
(their predictions carry the same event id). Before partitions are revoked in a rebalance and on
SIGTERM the producer is flushed and the acknowledged offsets committed synchronously.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Callable

import numpy as np
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from ml.offload.window import RawBatch, raw_batch
from ml.serving.metrics import ServingMetrics

log = logging.getLogger(__name__)

CONSUMER_DEFAULTS = {
    "enable.auto.commit": False,  # offsets are committed only after delivery (OffsetTracker)
    "auto.offset.reset": "earliest",
    "partition.assignment.strategy": "cooperative-sticky",
    "session.timeout.ms": 10_000,
    # with its queue full the client waits this long before it fetches again (1 s by default): the
    # loop then starved, and events that arrived in that second waited for it
    "fetch.queue.backoff.ms": 5,
}
PRODUCER_DEFAULTS = {
    "enable.idempotence": True,
    "compression.type": "lz4",
    "linger.ms": 2,
    "batch.size": 1_000_000,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
}


class DeliveryFailed(RuntimeError):
    """An output record was not delivered: its batch's offsets must never be committed."""


class BatchAck:
    """Counts the outstanding deliveries of one batch; `done` is every one of its records' callback."""

    __slots__ = ("pending", "error", "offsets")

    def __init__(self, offsets: dict[int, int]) -> None:
        self.pending, self.error, self.offsets = 0, None, offsets

    def done(self, err, msg) -> None:
        self.pending -= 1
        if err is not None and self.error is None:
            self.error = f"{msg.topic()}: {err.str()}"


class OffsetTracker:
    """Batches in consume order; commits the offsets of the longest fully acknowledged prefix."""

    def __init__(self, consumer, topic: str) -> None:
        self.consumer, self.topic = consumer, topic
        self.inflight: deque[BatchAck] = deque()

    def commit_ready(self, sync: bool = False) -> int:
        """Commit what is safe to commit; return how many batches that covered."""
        offsets: dict[int, int] = {}
        count = 0
        while self.inflight and self.inflight[0].pending <= 0:
            ack = self.inflight.popleft()
            if ack.error:
                raise DeliveryFailed(f"output not delivered ({ack.error}); its input offsets stay uncommitted")
            offsets.update(ack.offsets)
            count += 1
        if offsets:
            tps = [TopicPartition(self.topic, p, o + 1) for p, o in offsets.items()]
            self.consumer.commit(offsets=tps, asynchronous=not sync)
        return count


class Output:
    """Produces one batch's records, each with the batch's delivery callback."""

    __slots__ = ("producer", "ack")

    def __init__(self, producer, ack: BatchAck) -> None:
        self.producer, self.ack = producer, ack

    def many(self, topic: str, records: list) -> None:
        """Produce (key, value) or (key, value, timestamp ms) records to one topic; without a timestamp
        the producer stamps the time of sending."""
        produce, done = self.producer.produce, self.ack.done
        self.ack.pending += len(records)
        for key, value, *stamp in records:
            ts = stamp[0] if stamp else 0
            try:
                produce(topic, value, key, -1, done, None, ts)  # (..., callback, on_delivery, timestamp)
            except BufferError:
                self._retry(topic, value, key, None, ts)

    def one(self, topic: str, value: bytes | None, key, headers: list | None = None) -> None:
        self.ack.pending += 1
        try:
            self.producer.produce(topic, value, key, -1, self.ack.done, headers=headers)
        except BufferError:
            self._retry(topic, value, key, headers)

    def _retry(self, topic, value, key, headers, timestamp: int = 0) -> None:
        while True:  # the local queue is full: serve delivery reports until there is room
            self.producer.poll(0.05)
            try:
                return self.producer.produce(topic, value, key, -1, self.ack.done, None, timestamp, headers)
            except BufferError:
                continue


Process = Callable[[RawBatch, Output], None]


class StreamLoop:
    """One consumer, one producer, one thread: consume a batch, process it, produce, commit in order."""

    def __init__(self, consumer, producer, topic: str, metrics: ServingMetrics,
                 batch_max: int, batch_wait_s: float) -> None:
        self.consumer, self.producer, self.topic, self.metrics = consumer, producer, topic, metrics
        self.batch_max, self.batch_wait_s = batch_max, batch_wait_s
        self.tracker = OffsetTracker(consumer, topic)
        self.subscribed = False
        self.assigned: set[int] = set()  # partitions this replica owns now
        self._lag_at = 0.0

    def subscribe(self) -> None:
        self.consumer.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_lost)
        self.subscribed = True

    def step(self, process: Process) -> int:
        """One micro-batch: returns how many records it handled (0 when the wait ran out)."""
        messages = self.consumer.consume(self.batch_max, self.batch_wait_s)
        self.producer.poll(0)
        if messages:
            batch, errors = raw_batch(messages)
            for msg in errors:
                self._consumer_error(msg.error())
            if len(batch):
                offsets = dict(zip(batch.partitions.tolist(), batch.offsets.tolist()))  # last = highest per partition
                ack = BatchAck(offsets)
                process(batch, Output(self.producer, ack))
                self.tracker.inflight.append(ack)
        self.tracker.commit_ready()
        if time.monotonic() - self._lag_at > 1.0:
            self._update_lag()
        return len(messages)

    def drain(self, timeout_s: float = 30.0) -> None:
        """Wait for every produced record, then commit synchronously (SIGTERM, revocation)."""
        left = self.producer.flush(timeout_s)
        if left:
            raise DeliveryFailed(f"{left} output records still undelivered after {timeout_s:g} s")
        self.tracker.commit_ready(sync=True)

    def close(self) -> None:
        try:
            self.drain()
        finally:
            self.consumer.close()

    def _on_assign(self, consumer, partitions) -> None:
        self.assigned |= {p.partition for p in partitions}
        log.info("partitions assigned: %s; now own %s", [p.partition for p in partitions], sorted(self.assigned))

    def _on_revoke(self, consumer, partitions) -> None:
        if partitions:
            log.info("partitions revoked: %s; flushing and committing", [p.partition for p in partitions])
            self.drain()
        self.assigned -= {p.partition for p in partitions}

    def _on_lost(self, consumer, partitions) -> None:
        # the group moved on without us: these offsets can no longer be committed; the new owner repeats them
        log.warning("partitions lost: %s", [p.partition for p in partitions])
        self.assigned -= {p.partition for p in partitions}
        self.producer.flush(30)
        self.tracker.inflight.clear()

    def _consumer_error(self, err: KafkaError) -> None:
        if err.fatal():
            raise KafkaException(err)
        if err.code() != KafkaError._PARTITION_EOF:
            log.warning("consumer: %s", err.str())

    def _update_lag(self) -> None:
        self._lag_at = time.monotonic()
        try:
            assigned = self.consumer.assignment()
            lag = 0
            for tp in self.consumer.position(assigned) if assigned else []:
                low, high = self.consumer.get_watermark_offsets(tp, cached=True)
                if high >= 0:
                    lag += max(high - (tp.offset if tp.offset >= 0 else low), 0)
            self.metrics.lag.set(lag)
        except KafkaException as exc:
            log.debug("consumer lag unavailable: %s", exc)
