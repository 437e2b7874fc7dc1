"""Read exactly the records of one time window from a Kafka topic, positioned by time, not by group.

The start and end offsets of each partition come from `offsets_for_times`, widened by the allowed
lateness so that records produced out of order (up to that lateness) are still found; each record is
then kept only if its timestamp falls in [start, end). Hours therefore never overlap and never leave a
gap, and a rerun needs no stored position: it reads the same offsets again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterator

import numpy as np

HOUR = timedelta(hours=1)


class WindowError(RuntimeError):
    """The window could not be read (unknown topic, broker timeout, stalled partition)."""


@dataclass(frozen=True)
class Window:
    """A half-open time interval [start, end) in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self):
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"window end {self.end.isoformat()} is not after its start {self.start.isoformat()}")

    @classmethod
    def hour(cls, value: str | datetime) -> "Window":
        """The hour starting at `value` (an ISO time such as 2026-11-22T13 or 2026-11-22T13:00Z)."""
        if isinstance(value, str):
            text = value.strip().replace("Z", "+00:00")
            if len(text) == 13:  # YYYY-MM-DDTHH
                text += ":00"
            try:
                value = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"not an hour: {value!r}; use e.g. 2026-11-22T13 or 2026-11-22T13:00Z") from None
        start = (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
        if (start.minute, start.second, start.microsecond) != (0, 0, 0):
            raise ValueError(f"{value.isoformat()} is not the start of an hour")
        return cls(start, start + HOUR)

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return int(self.end.timestamp() * 1000)

    @property
    def partition_path(self) -> str:
        """Hive-style folder of the hour: dt=YYYY-MM-DD/hour=HH."""
        return f"dt={self.start:%Y-%m-%d}/hour={self.start:%H}"

    def hours(self) -> list["Window"]:
        """The whole hours this window covers."""
        out, t = [], self.start
        while t < self.end:
            out.append(Window(t, t + HOUR))
            t += HOUR
        return out


@dataclass(frozen=True)
class PartitionRange:
    """Offsets to read for a window. [segment_start, end_offset) is the window's own segment of the
    partition: segments of consecutive hours never overlap, so a record that its own hour could not
    find (it arrived later, or earlier, than the allowed lateness) is reported by exactly one hour."""

    partition: int
    start_offset: int  # first offset to read
    end_offset: int  # exclusive
    segment_start: int = 0


@dataclass
class RawBatch:
    """Records of one consume call that fall inside the window, in offset order per partition."""

    partitions: np.ndarray
    offsets: np.ndarray
    timestamps: np.ndarray
    keys: list
    values: list
    in_window: np.ndarray | None = None  # False: a stray of this window's segment from another hour
    ndjson: bytes | None = None  # the values prepared for the parser (see decode.ndjson); None: not yet

    def __len__(self) -> int:
        return len(self.values)

    def take(self, mask: np.ndarray) -> "RawBatch":
        idx = np.flatnonzero(mask).tolist()
        return RawBatch(self.partitions[mask], self.offsets[mask], self.timestamps[mask],
                        [self.keys[i] for i in idx], [self.values[i] for i in idx],
                        None if self.in_window is None else self.in_window[mask])


def raw_batch(messages: list) -> tuple[RawBatch, list]:
    """The records of one consume call as a RawBatch, and the messages among them that carry an error
    (one C loop per field: this runs for every record the offload and the sidecar read)."""
    from confluent_kafka import Message

    errors = [m for m in messages if m.error() is not None] if any(map(Message.error, messages)) else []
    if errors:
        messages = [m for m in messages if m.error() is None]
    return RawBatch(
        np.fromiter(map(Message.partition, messages), np.int32, len(messages)),
        np.fromiter(map(Message.offset, messages), np.int64, len(messages)),
        np.array([ts for _, ts in map(Message.timestamp, messages)], dtype=np.int64),
        list(map(Message.key, messages)), list(map(Message.value, messages))), errors


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
