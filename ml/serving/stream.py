"""The scoring loop: consume telemetry in micro-batches, score, produce, commit only what is delivered.

Pipelined: while scoring threads score the next batches (Arrow's parser and XGBoost release the GIL),
the loop's thread consumes and produces the records of those already scored, always in consume order
(`tune_threads` hands the GIL back to a scorer sooner than Python's default would, and the scorers run at a
lower CPU priority than the loop, which sets the pace).
While batches are being scored the loop only takes what the client already holds (it does not wait
for more), and when nothing more has arrived it produces the scored batches at once, so at low
traffic the pipeline adds no wait.

At-least-once: every output record of a batch carries that batch's delivery callback, and a batch's
offsets are committed only once all of its records are acknowledged by the broker and every earlier
batch is too, so a crash at any point loses nothing and a restart repeats at most the batches in flight
(their predictions carry the same event id). Before partitions are revoked in a rebalance and on
SIGTERM the producer is flushed and the acknowledged offsets committed synchronously. A batch that is not
delivered stops the loop (DeliveryFailed), and nothing at or past it is ever committed (`ml.serving.offsets`).
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import repeat
from typing import Any, Callable

from confluent_kafka import KafkaError, KafkaException

from ml.contract.decode import RawBatch, raw_batch
from ml.serving.metrics import ServingMetrics
from ml.serving.offsets import BatchAck, DeliveryFailed, OffsetTracker, first_offsets, last_offsets

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
# batches scored at once: a batch's scoring waits on Arrow's parser and XGBoost about half the time, in
# which a second one runs (measured on 2 cores: 1 thread ~75k events/s, 2 ~87k, 3 no better)
SCORING_THREADS = 2
# batches consumed and not yet produced: one on each scorer and two more waiting, so a scorer that frees
# up while the loop is busy producing finds its next batch ready (measured: one waiting ~130k events/s,
# two ~175k, three no better)
MAX_IN_FLIGHT = SCORING_THREADS + 2
PRODUCER_DEFAULTS = {
    "enable.idempotence": True,
    "compression.type": "lz4",
    "linger.ms": 2,
    "batch.size": 1_000_000,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
}


# The cyclic GC's youngest generation is collected every GC_YOUNG allocations instead of 700: every
# consumed record is a tracked Message object, freed by reference counting, and at the default the
# collector ran several times per batch while holding the GIL (measured: ~87k -> ~110k events/s).
GC_YOUNG = 100_000


def tune_gc() -> None:
    """For a process that streams: freeze what start-up made (modules, models, clients) out of the GC's
    reach, and collect the youngest generation every GC_YOUNG allocations."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])


# A thread waiting for the GIL gets it after SWITCH_INTERVAL_S instead of Python's 5 ms. A scoring thread
# gives the GIL up for each of the few dozen Arrow and XGBoost calls of a batch and needs it back after
# each, while the loop's thread holds it for milliseconds on end producing records; at 5 ms the scorers
# sat waiting and the loop then waited for them (measured, 6 benchmark runs each, interleaved:
# sidecar/passthrough median 0.57 at 5 ms, 0.69 at 0.5 ms; 0.62 at 1 ms and at 0.2 ms).
SWITCH_INTERVAL_S = 0.0005


def tune_threads() -> None:
    """For a process whose scoring threads run mostly outside the GIL beside a loop that holds it: hand
    the GIL to a waiting thread every SWITCH_INTERVAL_S."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


# Scoring threads run this many nice levels below the thread that starts them (Linux: a thread's own nice
# value). The loop's thread is the pipeline's pace-setter: with two scoring threads, the client's threads
# and the broker on two cores, it waited for a core about a third of the time; the scorers have slack (they
# wait for batches about a quarter of the time), so when cores are short the kernel now runs the loop first
# (measured, interleaved: run-queue wait of the loop's thread 0.30-0.38 -> 0.10-0.21 of its time;
# sidecar/passthrough median 0.59 -> 0.63 over 6 pairs and 0.61 -> 0.69 over 4; 19 levels no better).
SCORER_NICE = 10


def lower_priority(levels: int = SCORER_NICE) -> int:
    """Lower the calling thread's CPU priority by `levels` nice levels (at most to 19); returns the new nice
    value, or the unchanged one where threads have no priority of their own (not Linux) or it is refused."""
    if sys.platform != "linux":  # elsewhere PRIO_PROCESS with a thread id would renice the whole process
        return os.getpriority(os.PRIO_PROCESS, 0)
    tid = threading.get_native_id()
    current = os.getpriority(os.PRIO_PROCESS, tid)
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(current + levels, 19))
    except OSError as exc:  # e.g. a sandbox that forbids it: scoring still runs, at the same priority
        log.warning("scoring thread priority unchanged (%s)", exc)
    return os.getpriority(os.PRIO_PROCESS, tid)


# ... and the loop collects it itself whenever its pipeline is empty and this many objects have piled up.
# XGBoost makes a new class for every predict call's output: about 26 objects of cyclic garbage that only
# the collector frees. At low traffic there are hundreds of small batches a second, so by the time
# GC_YOUNG was reached thousands of those classes were freed in one pause (measured: 148 ms at 5k events/s,
# the latency tail); collected a few dozen at a time between batches, each pause is a fraction of a ms.
GC_IDLE_YOUNG = 1_000


def collect_young() -> int:
    """Collect the youngest generation if GC_IDLE_YOUNG objects have piled up in it, and an older one
    when its turn has come, as the automatic collector would; returns the generation collected or -1."""
    young, middle, old = gc.get_count()
    if young < GC_IDLE_YOUNG or not gc.isenabled():
        return -1
    _, every_middle, every_old = gc.get_threshold()
    generation = 0
    if middle + 1 >= every_middle:
        generation = 2 if old + 1 >= every_old else 1
    gc.collect(generation)
    return generation


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
        self.assigned: set[int] = set()  # partitions this replica owns now
        self._lag_at = 0.0
        self._scorer = ThreadPoolExecutor(SCORING_THREADS, thread_name_prefix="score", initializer=lower_priority)
        # batches in scoring, in consume order: (its scoring, its acknowledgements, how to produce it)
        self._pending: deque[tuple[Future, BatchAck, Emit]] = deque()

    def subscribe(self) -> None:
        self.consumer.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_lost)
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
        if time.monotonic() - self._lag_at > 1.0:
            self._update_lag()
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

    def _on_assign(self, consumer, partitions) -> None:
        self.assigned |= {p.partition for p in partitions}
        log.info("partitions assigned: %s; now own %s", [p.partition for p in partitions], sorted(self.assigned))

    def _on_revoke(self, consumer, partitions) -> None:
        try:
            if partitions and self.tracker.failure is None:  # after a failure there is nothing left to commit
                log.info("partitions revoked: %s; flushing and committing", [p.partition for p in partitions])
                self.drain()  # a failure found here is raised from the consume call that ran the rebalance
        finally:
            self.assigned -= {p.partition for p in partitions}

    def _on_lost(self, consumer, partitions) -> None:
        # the group moved on without us: these offsets can no longer be committed; the new owner repeats them
        log.warning("partitions lost: %s", [p.partition for p in partitions])
        self.assigned -= {p.partition for p in partitions}
        while self._pending:  # scored but not produced: the new owner scores them again
            self._pending.popleft()[0].exception()
        self.producer.flush(30)
        self.tracker.forget()

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
