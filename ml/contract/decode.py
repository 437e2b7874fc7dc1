"""Turn raw Kafka values of one topic into typed Arrow rows and rejects with their reasons.

A `RawBatch` holds the records of one consume call as the offload and the serving sidecar read them;
`decode` applies the topic's codec (`ml.contract.codec`) to it.

Clean batches take the fast path: one Arrow JSON parse of the whole batch with the topic's schema,
then the contract's vectorized checks. A batch that Arrow cannot parse (malformed JSON, a wrong type,
an oversized or empty message) is decoded record by record, so every bad record gets its own reason
while the good ones in the same batch are kept.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.json as pj

from ml.contract.codec import KAFKA_COLUMNS, TopicCodec
from ml.contract.model import TIMESTAMP

REJECT_SCHEMA = pa.schema([
    ("kafka_partition", pa.int32()), ("kafka_offset", pa.int64()), ("kafka_timestamp", TIMESTAMP),
    ("key", pa.binary()), ("value", pa.binary()), ("reason", pa.string()),
])


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


def decode(codec: TopicCodec, batch: RawBatch, threads: bool = True) -> tuple[pa.Table, pa.Table]:
    """(valid rows with Kafka partition/offset, rejects in REJECT_SCHEMA) of one raw batch. `threads`
    lets Arrow parse a large batch on its thread pool; a caller that already parses several batches at
    once on threads of its own (the serving sidecar) passes False and saves the pool's overhead."""
    blob = batch.ndjson if batch.ndjson is not None else ndjson(codec, batch.values)
    table = _fast_parse(codec, blob, len(batch), threads) if blob else None
    if table is not None:
        # rows Arrow flags (all rows when the codec has no Arrow rules) get their reasons from the checks
        suspects = np.flatnonzero(codec.flag(table)) if codec.flag else np.arange(table.num_rows)
        if len(suspects):
            _, rejects = codec.check(table.take(pa.array(suspects)).to_pandas())
            bad_pos, reasons = suspects[rejects.index.to_numpy()], rejects["reason"].tolist()
        else:
            bad_pos, reasons = np.zeros(0, dtype=np.int64), []
        keep = np.ones(len(batch), dtype=bool)
        keep[bad_pos] = False
        valid = table if keep.all() else table.filter(keep)
    else:
        valid, bad_pos, reasons = _slow_parse(codec, batch.values)
    kept = np.ones(len(batch), dtype=bool)
    kept[bad_pos] = False
    valid = valid.append_column(KAFKA_COLUMNS[0], pa.array(batch.partitions[kept])) \
                 .append_column(KAFKA_COLUMNS[1], pa.array(batch.offsets[kept]))
    return valid.cast(codec.output_schema), reject_table(batch, bad_pos, reasons)


def ndjson(codec: TopicCodec, values: list) -> bytes:
    """The values as one newline-delimited buffer for Arrow's parser, or b"" when a value rules the fast
    path out (missing, oversized, or holding a newline of its own; an empty one shows later, as a row
    count that falls short): then every record is decoded on its own. Runs on the reading thread; the
    scan for newlines, which also gives each value's length, runs in numpy without the GIL."""
    if not values:
        return b""
    try:
        blob = b"\n".join(values)
    except TypeError:  # a value is missing (None)
        return b""
    ends = newlines(blob)
    if len(ends) != len(values) - 1:
        return b""
    longest = int(np.diff(np.concatenate(([-1], ends, [len(blob)]))).max()) - 1
    return blob if longest <= codec.max_bytes else b""


# Each reading thread keeps the buffer its newline scan writes to: a fresh one of several MB would be
# page-faulted in on every batch. Buffers above this size are not kept.
SCRATCH_MAX_BYTES = 64 << 20
_scratch = threading.local()


def newlines(blob: bytes) -> np.ndarray:
    """Positions of b"\n" in `blob`, found by numpy outside the GIL (bytes.count holds it, and the
    serving sidecar's Kafka loop waits for it)."""
    data = np.frombuffer(blob, dtype=np.uint8)
    mask = getattr(_scratch, "mask", None)
    if mask is None or len(mask) < len(data):
        mask = np.empty(len(data), dtype=bool)
        if len(data) <= SCRATCH_MAX_BYTES:
            _scratch.mask = mask
    out = mask[:len(data)]
    np.equal(data, ord("\n"), out=out)
    return np.flatnonzero(out)


def _fast_parse(codec: TopicCodec, blob: bytes, rows: int, threads: bool = True) -> pa.Table | None:
    # with threads, two blocks parse at once; without, one block holds the whole batch
    block = max(1 << 20, len(blob) // 2 + 1 if threads else len(blob) + 1)
    try:
        table = pj.read_json(io.BytesIO(blob), read_options=pj.ReadOptions(use_threads=threads, block_size=block),
                             parse_options=pj.ParseOptions(explicit_schema=codec.schema, unexpected_field_behavior="ignore"))
    except pa.ArrowInvalid:
        return None
    return table if table.num_rows == rows else None


def _slow_parse(codec: TopicCodec, values: list) -> tuple[pa.Table, np.ndarray, list[str]]:
    rows, row_pos, bad_pos, reasons = [], [], [], []
    for i, raw in enumerate(values):
        reason = None
        if not raw:
            reason = "empty message"
        elif len(raw) > codec.max_bytes:
            reason = f"oversized: {len(raw)} bytes > max_event_bytes {codec.max_bytes}"
        else:
            try:
                obj = orjson.loads(raw)
                if isinstance(obj, dict):
                    rows.append(obj)
                    row_pos.append(i)
                    continue
                reason = f"undecodable: expected a JSON object, got {type(obj).__name__}"
            except orjson.JSONDecodeError as exc:
                reason = f"undecodable: {exc}"
        bad_pos.append(i)
        reasons.append(reason)
    frame = pd.DataFrame.from_records(rows) if rows else pd.DataFrame(columns=codec.schema.names)
    valid, rejects = codec.check(frame)
    row_pos = np.asarray(row_pos, dtype=np.int64)
    bad_pos += row_pos[rejects.index.to_numpy()].tolist()
    reasons += rejects["reason"].tolist()
    table = pa.Table.from_pandas(valid[codec.schema.names], schema=codec.schema, preserve_index=False)
    order = np.argsort(bad_pos, kind="stable")
    return table, np.asarray(bad_pos, dtype=np.int64)[order], [reasons[i] for i in order]


def reject_table(batch: RawBatch, pos: np.ndarray, reasons: list[str]) -> pa.Table:
    return pa.table({
        "kafka_partition": pa.array(batch.partitions[pos]), "kafka_offset": pa.array(batch.offsets[pos]),
        "kafka_timestamp": pa.array(batch.timestamps[pos], TIMESTAMP),
        "key": pa.array([batch.keys[i] for i in pos], pa.binary()),
        "value": pa.array([batch.values[i] for i in pos], pa.binary()),
        "reason": pa.array(reasons, pa.string()),
    }, schema=REJECT_SCHEMA)
