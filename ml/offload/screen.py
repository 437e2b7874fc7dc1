"""The hour's own rules for telemetry, applied after the contract's: event times that belong to the
hour, and one row per event.

A record that breaks them goes to the hour's quarantine with its reason, and the rest of the hour
stays usable. Without them one such record (a device whose clock is hours off, a producer that sent
an event twice) failed a critical expectation, and the whole hour was left out of drift and training.

- `event_time_out_of_window`: the event's own time lies outside the hour widened by the allowed
  lateness on both sides, [start - lateness, end + lateness): the same bounds validation checks.
- `event_time_skew`: the event's time lies further than the allowed skew from its Kafka record
  timestamp (which decides the hour); exactly the skew is allowed.
- `duplicate`: an event id that an earlier record of the hour already holds. The first record is
  kept: the lowest offset within a partition, and across partitions the one with the earliest Kafka
  timestamp, then the lowest partition, so a rerun keeps the same one.

Repeats are found without holding the hour's ids: each parsed batch leaves a 64-bit fingerprint per row
(8 bytes a row, where the ids themselves and a hash table of them took about 170 bytes), and only the
rows whose fingerprint occurs twice are read back and compared by their ids. A fingerprint shared by two
different ids costs one more read, never a wrong verdict.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ml.contract.decode import REJECT_SCHEMA, RawBatch, reject_table
from ml.lake.window import Window
from ml.offload.reader import PartitionRange, read_window

OUT_OF_WINDOW, SKEW, DUPLICATE = "event_time_out_of_window", "event_time_skew", "duplicate"


def check_times(valid: pa.Table, batch: RawBatch, event_time: str, window: Window, lateness: timedelta,
                max_skew: timedelta | None) -> tuple[pa.Table, pa.Table]:
    """(rows kept, rejects) of one decoded batch: rows whose event time is out of the hour's bounds or,
    when `max_skew` is given, too far from the record's Kafka timestamp go to the rejects."""
    if not valid.num_rows:
        return valid, REJECT_SCHEMA.empty_table()
    ts = valid.column(event_time).cast(pa.int64()).to_numpy()  # ms since the epoch, UTC
    lag = int(lateness.total_seconds() * 1000)
    low, high = window.start_ms - lag, window.end_ms + lag
    out = (ts < low) | (ts >= high)
    pos = _positions(valid, batch)
    kafka = batch.timestamps[pos]
    skewed = np.zeros(len(ts), dtype=bool)
    if max_skew is not None:
        skewed = ~out & (np.abs(ts - kafka) > int(max_skew.total_seconds() * 1000))
    bad = out | skewed
    if not bad.any():
        return valid, REJECT_SCHEMA.empty_table()
    reasons = []
    for i in np.flatnonzero(bad).tolist():
        if out[i]:
            reasons.append(f"{OUT_OF_WINDOW}: {event_time} {_iso(ts[i])} is outside [{_iso(low)}, {_iso(high)}), "
                           f"the hour {window.start:%Y-%m-%dT%H} widened by the allowed lateness {lateness} "
                           "(CONTINUUM_OFFLOAD_LATENESS_MINUTES); fix the device clock or the event time it sends")
        else:
            reasons.append(f"{SKEW}: {event_time} {_iso(ts[i])} is {timedelta(milliseconds=int(abs(ts[i] - kafka[i])))} "
                           f"from the record's Kafka timestamp {_iso(kafka[i])}, more than the allowed {max_skew} "
                           "(CONTINUUM_MAX_EVENT_SKEW_MINUTES); fix the device clock or the event time it sends")
    return valid.filter(pa.array(~bad)), reject_table(batch, pos[bad], reasons)


_WEIGHTS = np.random.default_rng(0x5EED).integers(1, 2**63, size=64, dtype=np.uint64) * 2 + 1


def fingerprints(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A 64-bit fingerprint per id (a string column): a sum of each byte times a random odd weight for
    its position, mixed with the length, computed on Arrow's buffers (no Python object per id)."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks() if ids.num_chunks else pa.array([], pa.string())
    ids = ids.cast(pa.large_string())
    if not len(ids):
        return np.empty(0, np.uint64)
    bounds = np.frombuffer(ids.buffers()[1], np.int64)[ids.offset:ids.offset + len(ids) + 1]
    lengths = np.diff(bounds)
    out = lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    if lengths.any():
        data = np.frombuffer(ids.buffers()[2], np.uint8)[bounds[0]:bounds[-1]]
        position = np.arange(len(data)) - np.repeat(bounds[:-1] - bounds[0], lengths)
        weights = _WEIGHTS[position & 63]
        if len(_WEIGHTS) < lengths.max():  # past 64 bytes: the weight of the position 64 earlier times an odd factor
            weights = weights * ((position >> 6) * 2 + 1).astype(np.uint64)
        terms = data.astype(np.uint64) * weights
        filled = lengths > 0
        out[filled] += np.add.reduceat(terms, (bounds[:-1] - bounds[0])[filled])
    return out


def repeated(prints: Iterable[np.ndarray]) -> np.ndarray:
    """The fingerprints that occur more than once among all the given ones (sorted)."""
    every = np.sort(np.concatenate([np.empty(0, np.uint64), *prints]))
    return np.unique(every[1:][every[1:] == every[:-1]])


def suspects(batches: Iterable[pa.RecordBatch], event_id: str, prints: np.ndarray) -> pa.Table:
    """The rows (event id, kafka_partition, kafka_offset) among `batches` whose id's fingerprint is one
    of `prints`: every record of a repeated id is among them."""
    found = [batch.filter(pa.array(np.isin(fingerprints(batch.column(event_id)), prints)))
             for batch in batches] if len(prints) else []
    found = [b for b in found if b.num_rows]
    return pa.Table.from_batches(found) if found else pa.table({event_id: pa.array([], pa.string()),
                                                              "kafka_partition": pa.array([], pa.int32()),
                                                              "kafka_offset": pa.array([], pa.int64())})


def duplicates(consumer, topic: str, window: Window, rows: pa.Table, event_id: str) -> tuple[pa.Table, dict]:
    """The records to drop as duplicates among the hour's `rows` (event id, kafka_partition,
    kafka_offset), as rejects with their original bytes, and {partition: offsets} to drop. The
    records of duplicated ids are read again from Kafka, for their timestamps and bytes."""
    ids = rows.column(event_id)
    if pc.count_distinct(ids).as_py() == rows.num_rows:
        return REJECT_SCHEMA.empty_table(), {}
    counts = rows.group_by(event_id).aggregate([(event_id, "count")])
    twice = counts.filter(pc.greater(counts.column(f"{event_id}_count"), 1)).column(event_id)
    dup = rows.filter(pc.is_in(ids, value_set=twice.combine_chunks())).to_pandas()
    records = _fetch(consumer, topic, window, dup)
    where = {(p, o): i for i, (p, o) in enumerate(zip(records.partitions.tolist(), records.offsets.tolist()))}
    dup["pos"] = [where[(p, o)] for p, o in zip(dup["kafka_partition"].tolist(), dup["kafka_offset"].tolist())]
    dup["kafka_ts"] = records.timestamps[dup["pos"].to_numpy()]
    dup = dup.sort_values(["kafka_partition", "kafka_offset"])
    firsts = dup.drop_duplicates([event_id, "kafka_partition"])  # the lowest offset of each partition
    kept = firsts.sort_values(["kafka_ts", "kafka_partition"], kind="stable").drop_duplicates(event_id)
    losers = dup.drop(index=kept.index)
    winner = kept.set_index(event_id)
    reasons = [f"{DUPLICATE}: {event_id} {eid!r} is already in the hour at partition "
               f"{int(winner.at[eid, 'kafka_partition'])} offset {int(winner.at[eid, 'kafka_offset'])} "
               "(the first record of an event is kept)" for eid in losers[event_id].tolist()]
    drop = {int(p): group["kafka_offset"].to_numpy() for p, group in losers.groupby("kafka_partition")}
    return reject_table(records, losers["pos"].to_numpy(), reasons), drop


def _fetch(consumer, topic: str, window: Window, wanted: pd.DataFrame) -> RawBatch:
    """The Kafka records at the wanted (kafka_partition, kafka_offset), with their timestamps and bytes."""
    ranges = [PartitionRange(int(p), int(g["kafka_offset"].min()), int(g["kafka_offset"].max()) + 1)
              for p, g in wanted.groupby("kafka_partition")]
    want = set(zip(wanted["kafka_partition"].tolist(), wanted["kafka_offset"].tolist()))
    parts = []
    for batch in read_window(consumer, topic, window, ranges):
        hit = np.fromiter(((p, o) in want for p, o in zip(batch.partitions.tolist(), batch.offsets.tolist())),
                          bool, len(batch))
        if hit.any():
            parts.append(batch.take(hit))
    return RawBatch(np.concatenate([b.partitions for b in parts]), np.concatenate([b.offsets for b in parts]),
                    np.concatenate([b.timestamps for b in parts]), [k for b in parts for k in b.keys],
                    [v for b in parts for v in b.values])


def _positions(valid: pa.Table, batch: RawBatch) -> np.ndarray:
    """The batch position of each valid row (a row is its record's partition and offset)."""
    if valid.num_rows == len(batch):
        return np.arange(len(batch))
    keys = (batch.partitions.astype(np.int64) << 40) | batch.offsets
    order = np.argsort(keys, kind="stable")
    wanted = (valid.column("kafka_partition").to_numpy().astype(np.int64) << 40) \
        | valid.column("kafka_offset").to_numpy()
    return order[np.searchsorted(keys[order], wanted)]


def _iso(ms) -> str:
    return datetime.fromtimestamp(int(ms) / 1000, timezone.utc).isoformat(timespec="milliseconds")
