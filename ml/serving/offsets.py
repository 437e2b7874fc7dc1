"""At-least-once bookkeeping of the scoring loop: which input offsets may be committed, and never any past a
batch whose outputs were not delivered.

Every batch gets a `BatchAck` that counts its outstanding output records. `OffsetTracker` keeps the acks in
consume order and commits the offsets of the longest prefix of batches whose every record the broker
acknowledged. The first batch that failed (a record refused when produced or by the broker, left
undelivered by a drain, or never produced because scoring failed) is a watermark for the rest of the
tracker's life: the batches before it are committed (synchronously: it is the last commit), and nothing
at or past it ever is, on any partition, whatever path asks (a step, a rebalance, a drain, a close).
A restart then reads from that batch's first offsets and scores it again.

Partitions the failed batch had no records on are frozen too: a later batch's records there were
acknowledged, but they come after the failure in consume order, and a failed delivery usually means the
producer or the broker is in trouble, not one record. Committing them would save a restart only a few
repeated events (which downstream drops by event id), and any slip in that reasoning would lose events.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from confluent_kafka import TopicPartition


class DeliveryFailed(RuntimeError):
    """An output record was not delivered: its batch's offsets and every later batch's stay uncommitted."""


def _runs(partitions: np.ndarray) -> np.ndarray:
    """Where each run of one partition's records ends in a batch (a consume call returns them in runs)."""
    return np.append(np.flatnonzero(partitions[1:] != partitions[:-1]), len(partitions) - 1)


def last_offsets(partitions: np.ndarray, offsets: np.ndarray) -> dict[int, int]:
    """Each partition's last offset in a batch in consume order (its highest: a partition's records come in
    offset order). Read at each change of partition, not record by record: a consume call returns each
    partition's records in runs, so this is a handful of values per batch, not 20,000."""
    if not len(partitions):
        return {}
    ends = _runs(partitions)
    return dict(zip(partitions[ends].tolist(), offsets[ends].tolist()))


def first_offsets(partitions: np.ndarray, offsets: np.ndarray) -> dict[int, int]:
    """Each partition's first offset in a batch: where a restart reads it again if it is not delivered."""
    if not len(partitions):
        return {}
    starts = np.insert(_runs(partitions)[:-1] + 1, 0, 0)[::-1]  # backwards: a partition's first run wins
    return dict(zip(partitions[starts].tolist(), offsets[starts].tolist()))


class BatchAck:
    """Counts the outstanding deliveries of one batch; `done` is every one of its records' callback.
    `offsets` are the batch's last offsets per partition, `first` its first ones."""

    __slots__ = ("pending", "error", "offsets", "first")

    def __init__(self, offsets: dict[int, int], first: dict[int, int] | None = None) -> None:
        self.pending, self.error, self.offsets, self.first = 0, None, offsets, first or {}

    def done(self, err, msg) -> None:
        self.pending -= 1
        if err is not None and self.error is None:
            self.error = f"{msg.topic()}: {err.str()}"

    def fail(self, reason: str) -> None:
        """Mark the batch undelivered (the first reason stays): its records are not all coming."""
        if self.error is None:
            self.error = reason


class OffsetTracker:
    """Batches in consume order; commits the offsets of the longest fully acknowledged prefix and nothing at
    or past the first batch that failed."""

    def __init__(self, consumer, topic: str) -> None:
        self.consumer, self.topic = consumer, topic
        self.inflight: deque[BatchAck] = deque()
        self.failure: str | None = None  # set once, never cleared: what failed, and from which offsets

    def check(self) -> None:
        """Raise DeliveryFailed if a batch has failed."""
        if self.failure is not None:
            raise DeliveryFailed(self.failure)

    def give_up(self, reason: str) -> None:
        """Fail the first batch still waiting for acknowledgements (a drain ran out of time)."""
        for ack in self.inflight:
            if ack.pending > 0 or ack.error is not None:
                ack.fail(reason)
                return

    def commit_ready(self, sync: bool = False) -> int:
        """Commit what is safe to commit; return how many batches that covered. Raises DeliveryFailed when
        the prefix reaches a failed batch, now and on every later call."""
        self.check()
        offsets: dict[int, int] = {}
        count = 0
        while self.inflight:
            ack = self.inflight[0]
            if ack.error is not None:  # even with records outstanding: they cannot make it delivered
                at = ", ".join(f"{p}:{o}" for p, o in sorted(ack.first.items())) or "unknown"
                self.failure = (f"output of the batch from {self.topic} partition:offset {at} not delivered "
                                f"({ack.error}); offsets committed up to it and nothing after it")
                sync = True  # the last commit: it lands before the loop stops
                break
            if ack.pending > 0:
                break
            self.inflight.popleft()
            offsets.update(ack.offsets)
            count += 1
        if offsets:
            tps = [TopicPartition(self.topic, p, o + 1) for p, o in offsets.items()]
            self.consumer.commit(offsets=tps, asynchronous=not sync)
        self.check()
        return count

    def forget(self) -> None:
        """Drop the batches in flight (their partitions were lost: their offsets can no longer be committed,
        and the new owner reads them again). A recorded failure stays."""
        self.inflight.clear()
