"""Read exactly the records of one time window from a Kafka topic, positioned by time, not by group.

The start and end offsets of each partition come from `offsets_for_times`, widened by the allowed
lateness so that records produced out of order (up to that lateness) are still found; each record is
then kept only if its timestamp falls in [start, end). Hours therefore never overlap and never leave a
gap, and a rerun needs no stored position: it reads the same offsets again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterator

import numpy as np

from ml.contract.decode import RawBatch, raw_batch
from ml.lake.window import Window


class WindowError(RuntimeError):
    """The window could not be read (unknown topic, broker timeout, stalled partition)."""


@dataclass(frozen=True)
class PartitionRange:
    """Offsets to read for a window. [segment_start, end_offset) is the window's own segment of the
    partition: segments of consecutive hours never overlap, so a record that its own hour could not
    find (it arrived later, or earlier, than the allowed lateness) is reported by exactly one hour."""

    partition: int
    start_offset: int  # first offset to read
    end_offset: int  # exclusive
    segment_start: int = 0


def partition_ranges(consumer, topic: str, window: Window, lateness: timedelta, timeout: float = 30.0) -> list[PartitionRange]:
    """Per partition, the offsets that can hold records of the window (widened by the lateness)."""
    from confluent_kafka import TopicPartition

    meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
    if meta is None or meta.error is not None or not meta.partitions:
        raise WindowError(f"topic {topic!r} does not exist on the broker")
    parts = sorted(meta.partitions)
    lag_ms = int(lateness.total_seconds() * 1000)

    def lookup(ts: int) -> list[int]:
        found = consumer.offsets_for_times([TopicPartition(topic, p, ts) for p in parts], timeout=timeout)
        return [tp.offset for tp in found]

    starts, ends = lookup(window.start_ms - lag_ms), lookup(window.end_ms + lag_ms)
    segments = lookup(window.start_ms + lag_ms)  # where the previous hour's segment ends
    ranges = []
    for p, lo, hi, seg in zip(parts, starts, ends, segments):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
        lo = high if lo < 0 else max(lo, low)  # -1: no record at or after that time
        hi = high if hi < 0 else hi
        seg = high if seg < 0 else max(seg, low)
        ranges.append(PartitionRange(p, min(lo, seg), max(lo, hi), seg))
    return ranges


def read_window(consumer, topic: str, window: Window, ranges: list[PartitionRange], batch_size: int = 50_000,
                stall_timeout: float = 30.0) -> Iterator[RawBatch]:
    """Yield the records of the window from the given offset ranges, batch by batch."""
    from confluent_kafka import KafkaError, TopicPartition

    todo = {r.partition: r for r in ranges if r.end_offset > r.start_offset}
    if not todo:
        return
    consumer.assign([TopicPartition(topic, r.partition, r.start_offset) for r in todo.values()])
    start_ms, end_ms = window.start_ms, window.end_ms
    last_progress = time.monotonic()
    try:
        while todo:
            msgs = consumer.consume(batch_size, timeout=1.0)
            if not msgs:
                if time.monotonic() - last_progress > stall_timeout:
                    raise WindowError(f"{topic}: no records for {stall_timeout:.0f}s before reaching the window's "
                                      f"end offsets {sorted((r.partition, r.end_offset) for r in todo.values())}")
                continue
            last_progress = time.monotonic()
            batch, errors = raw_batch(msgs)
            fatal = [m.error() for m in errors if m.error().code() != KafkaError._PARTITION_EOF]
            if fatal:
                raise WindowError(f"{topic}: {fatal[0]}")
            if not len(batch):
                continue
            parts, offs, tss = batch.partitions, batch.offsets, batch.timestamps
            end = np.full(len(parts), -1, np.int64)
            seg = np.zeros(len(parts), np.int64)
            for p, r in todo.items():
                end[parts == p], seg[parts == p] = r.end_offset, r.segment_start
            in_range = offs < end  # partitions already finished have end -1
            for p in np.unique(parts[in_range]).tolist():
                if offs[in_range & (parts == p)].max() >= todo[p].end_offset - 1:
                    del todo[p]
            in_window = (tss >= start_ms) & (tss < end_ms)
            keep = in_range & (in_window | (offs >= seg))
            done = [TopicPartition(topic, int(p)) for p in np.unique(parts).tolist() if p not in todo]
            if done:
                consumer.incremental_unassign(done)
            batch.in_window = in_window
            if keep.all():
                yield batch
            elif keep.any():
                yield batch.take(keep)
    finally:
        consumer.unassign()
