"""The scoring loop: consume telemetry in micro-batches, score, produce, commit only what is delivered.

Pipelined: while scoring threads score the next batches (Arrow's parser and XGBoost release the GIL),
the loop's thread consumes and produces the records of those already scored, always in consume order
(the scorers run at a lower CPU priority than the loop, which sets the pace; the sidecar's entry point
also has the GIL handed back to a scorer sooner than Python's default would: `ml.runtime`).
While batches are being scored the loop only takes what the client already holds (it does not wait
for more), and when nothing more has arrived it produces the scored batches at once, so at low
traffic the pipeline adds no wait.

At-least-once: every output record of a batch carries that batch's delivery callback, and a batch's
offsets are committed only once all of its records are acknowledged by the broker and every earlier
batch is too, so a crash at any point loses nothing and a restart repeats at most the batches in flight
(their predictions carry the same event id). Before partitions are revoked in a rebalance and on
SIGTERM the producer is flushed and the acknowledged offsets committed synchronously (the group's side:
`ml.serving.membership`). A batch that is not delivered stops the loop (DeliveryFailed), and nothing at or
past it is ever committed (`ml.serving.offsets`).
"""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import repeat
from typing import Any, Callable

from confluent_kafka import KafkaError, KafkaException

from ml.contract.decode import RawBatch, raw_batch
from ml.runtime import collect_young, lower_priority
from ml.serving.membership import Membership
from ml.serving.metrics import ServingMetrics
from ml.serving.offsets import BatchAck, OffsetTracker, first_offsets, last_offsets

log = logging.getLogger(__name__)

# batches scored at once: a batch's scoring waits on Arrow's parser and XGBoost about half the time, in
# which a second one runs (bench/README.md)
SCORING_THREADS = 2
# batches consumed and not yet produced: one on each scorer and two more waiting, so a scorer that frees
# up while the loop is busy producing finds its next batch ready (bench/README.md)
MAX_IN_FLIGHT = SCORING_THREADS + 2


class Records:
    """One topic's records of a batch as parallel lists (no tuple per record): keys, values and, when
    given, each record's timestamp in ms (None: the producer stamps the time of sending)."""

    __slots__ = ("keys", "values", "timestamps")

    def __init__(self, keys: list, values: list, timestamps: list | None = None) -> None:
        if len(keys) != len(values) or timestamps is not None and len(timestamps) != len(values):
            raise ValueError(f"records: {len(keys)} keys, {len(values)} values and "
                             f"{len(timestamps) if timestamps is not None else 'no'} timestamps")
        self.keys, self.values, self.timestamps = keys, values, timestamps

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self):
        """(key, value, timestamp) per record, or (key, value) without timestamps."""
        if self.timestamps is None:
            return zip(self.keys, self.values)
        return zip(self.keys, self.values, self.timestamps)

    def __getitem__(self, i: int) -> tuple:
        return (self.keys[i], self.values[i]) + (() if self.timestamps is None else (self.timestamps[i],))


def refused(topic: str, exc: KafkaException) -> str:
    """Why the client refused to produce a record to `topic`, in the words of a delivery report."""
    err = exc.args[0] if exc.args else None
    return f"{topic}: {err.str() if isinstance(err, KafkaError) else exc}"


class Output:
    """Produces one batch's records, each with the batch's delivery callback. A record the client refuses
    when produced (e.g. over its message.max.bytes) fails the batch, as an undelivered one does: the
    loop then stops at that batch through the same guarded commit, instead of raising past it."""

    __slots__ = ("producer", "ack")

    def __init__(self, producer, ack: BatchAck) -> None:
        self.producer, self.ack = producer, ack

    def many(self, topic: str, records: Records) -> None:
        """Produce one topic's records, in order."""
        if not len(records):
            return
        produce, done = self.producer.produce, self.ack.done
        self.ack.pending += len(records)
        stamps = records.timestamps if records.timestamps is not None else repeat(0, len(records))
        try:  # around the loop, not in it: nothing added per record
            for key, value, ts in zip(records.keys, records.values, stamps):  # no tuple kept per record
                try:
                    produce(topic, value, key, -1, done, None, ts)  # (..., callback, on_delivery, timestamp)
                except BufferError:
                    self._retry(topic, value, key, None, ts)
        except KafkaException as exc:  # the rest of these records are not produced: the batch has failed
            self.ack.fail(refused(topic, exc))

    def one(self, topic: str, value: bytes | None, key, headers: list | None = None) -> None:
        self.ack.pending += 1
        try:
            try:
                self.producer.produce(topic, value, key, -1, self.ack.done, headers=headers)
            except BufferError:
                self._retry(topic, value, key, headers)
        except KafkaException as exc:
            self.ack.fail(refused(topic, exc))

    def _retry(self, topic, value, key, headers, timestamp: int = 0) -> None:
        while True:  # the local queue is full: serve delivery reports until there is room
            self.producer.poll(0.05)
            try:
                return self.producer.produce(topic, value, key, -1, self.ack.done, None, timestamp, headers)
            except BufferError:
                continue


Score = Callable[[RawBatch], Any]  # runs on the scoring thread: a batch in, what `Emit` produces out
Emit = Callable[[Any, Output], None]  # runs on the loop's thread, in consume order


class StreamLoop:
    """One consumer, one producer: consume a batch, score it on a scoring thread, produce, commit in order."""

    def __init__(self, consumer, producer, topic: str, metrics: ServingMetrics,
                 batch_max: int, batch_wait_s: float) -> None:
        self.consumer, self.producer, self.topic, self.metrics = consumer, producer, topic, metrics
        self.batch_max, self.batch_wait_s = batch_max, batch_wait_s
        self.tracker = OffsetTracker(consumer, topic)
        self.subscribed = False
        self.membership = Membership(metrics, self.drain, self._discard, lambda: self.tracker.failure is not None)
        self._scorer = ThreadPoolExecutor(SCORING_THREADS, thread_name_prefix="score", initializer=lower_priority)
        # batches in scoring, in consume order: (its scoring, its acknowledgements, how to produce it)
        self._pending: deque[tuple[Future, BatchAck, Emit]] = deque()

    def subscribe(self) -> None:
        group = self.membership
        self.consumer.subscribe([self.topic], on_assign=group.on_assign, on_revoke=group.on_revoke,
                                on_lost=group.on_lost)
        self.subscribed = True

    def step(self, score: Score, emit: Emit) -> int:
        """One micro-batch: returns how many records it consumed (0 when the wait ran out). Raises
        DeliveryFailed, now and on every later call, once a batch was not delivered."""
        self.tracker.check()
        # with batches in scoring, take only what the client holds: their records must not wait for more
        messages = self.consumer.consume(self.batch_max, 0 if self._pending else self.batch_wait_s)
        self.producer.poll(0)
        batch = None
        if messages:
            batch, errors = raw_batch(messages)
            for msg in errors:
                self._consumer_error(msg.error())
            if not len(batch):
                batch = None
        if batch is not None:
            parts, offs = batch.partitions, batch.offsets
            ack = BatchAck(last_offsets(parts, offs), first_offsets(parts, offs))
            self._pending.append((self._scorer.submit(score, batch), ack, emit))
        # produce scored batches in consume order: those done; the oldest when MAX_IN_FLIGHT are; all of
        # them when nothing new arrived (at low traffic nothing waits for a next batch)
        while self._pending and (batch is None or len(self._pending) >= MAX_IN_FLIGHT or self._pending[0][0].done()):
            self._emit(*self._pending.popleft())  # a scoring failure is raised here
        self.tracker.commit_ready()
        if not self._pending:  # nothing waits on this thread now: a short collection instead of a long one later
            collect_young()
        self.membership.update_lag(self.consumer)
        return len(messages)

    def finish(self) -> None:
        """Produce the batches still in scoring, in order (before a drain: revocation, SIGTERM)."""
        while self._pending:
            self._emit(*self._pending.popleft())

    def _emit(self, scoring: Future, ack: BatchAck, emit: Emit) -> None:
        try:
            emit(scoring.result(), Output(self.producer, ack))
        except BaseException as exc:
            # not (all) produced: the tracker stops the commits at this batch, and the ones after it are dropped
            ack.fail(f"not produced: {type(exc).__name__}: {exc}")
            while self._pending:
                self._pending.popleft()[0].cancel()
            raise
        finally:
            self.tracker.inflight.append(ack)

    def drain(self, timeout_s: float = 30.0) -> None:
        """Produce the batches in scoring, wait for every produced record, then commit synchronously what
        was delivered. Raises DeliveryFailed if a batch was not: nothing at or after it is committed."""
        self.tracker.check()  # after a failure nothing more is produced or committed
        self.finish()
        left = self.producer.flush(timeout_s)
        if left:
            self.tracker.give_up(f"{left} output records still undelivered after {timeout_s:g} s")
        self.tracker.commit_ready(sync=True)

    def close(self) -> None:
        """Drain, then leave the group. Raises DeliveryFailed if a batch was not delivered (also when that
        was raised before): its first offsets are where the group's next reader starts."""
        try:
            self.drain()
        finally:
            while self._pending:  # left by a failure: never produced
                self._pending.popleft()[0].cancel()
            self._scorer.shutdown(wait=True)
            self.consumer.close()

    def describe(self) -> dict:
        """Where the loop stands, for a stuck sidecar's report (`kill -USR1`): what it owns, where it
        reads from and how far the partitions go, what is in scoring, how many batches await delivery."""
        positions = {}
        try:
            for tp in self.consumer.position(self.consumer.assignment()):
                low, high = self.consumer.get_watermark_offsets(tp, cached=True)
                positions[tp.partition] = {"position": tp.offset, "low": low, "high": high}
        except KafkaException as exc:
            positions = {"unavailable": str(exc)}
        return {"subscribed": self.subscribed, "assigned": sorted(self.assigned), "positions": positions,
                "scoring": [("done" if f.done() else "running") for f, _, _ in self._pending],
                "awaiting_delivery": len(self.tracker.inflight), "failure": self.tracker.failure}

    @property
    def assigned(self) -> set[int]:
        """The partitions this replica owns now."""
        return self.membership.assigned

    def _discard(self) -> None:
        """The partitions were lost: drop the batches scored and not produced (the new owner scores them
        again), wait for what was produced, and forget offsets that can no longer be committed."""
        while self._pending:
            self._pending.popleft()[0].exception()
        self.producer.flush(30)
        self.tracker.forget()

    def _consumer_error(self, err: KafkaError) -> None:
        if err.fatal():
            raise KafkaException(err)
        if err.code() != KafkaError._PARTITION_EOF:
            log.warning("consumer: %s", err.str())
