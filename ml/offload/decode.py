"""Turn raw Kafka values of one topic into typed Arrow rows and rejects with their reasons.

Clean batches take the fast path: one Arrow JSON parse of the whole batch with the topic's schema,
then the contract's vectorized checks. A batch that Arrow cannot parse (malformed JSON, a wrong type,
an oversized or empty message) is decoded record by record, so every bad record gets its own reason
while the good ones in the same batch are kept.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.json as pj

from ml.contract import Contract, check_records, invalid_rows
from ml.contract.model import TIMESTAMP
from ml.offload.window import RawBatch

KAFKA_COLUMNS = [pa.field("kafka_partition", pa.int32()), pa.field("kafka_offset", pa.int64())]
REJECT_SCHEMA = pa.schema([
    ("kafka_partition", pa.int32()), ("kafka_offset", pa.int64()), ("kafka_timestamp", TIMESTAMP),
    ("key", pa.binary()), ("value", pa.binary()), ("reason", pa.string()),
])
Check = Callable[[pd.DataFrame], tuple[pd.DataFrame, pd.DataFrame]]


@dataclass(frozen=True)
class TopicCodec:
    """How one topic's records are parsed and checked."""

    kind: str
    schema: pa.Schema  # parsed row, without Kafka columns
    check: Check  # decoded frame -> (valid, rejects with `reason`)
    max_bytes: int
    flag: Callable[[pa.Table], np.ndarray] | None = None  # the same rules on a typed Arrow table, in Arrow

    @property
    def output_schema(self) -> pa.Schema:
        return pa.schema(list(self.schema) + KAFKA_COLUMNS, metadata=self.schema.metadata)


def prediction_schema(contract: Contract) -> pa.Schema:
    """A scored event as the serving sidecar writes it to the predictions topic."""
    return pa.schema([
        pa.field(contract.event_id, pa.string(), nullable=False),
        pa.field(contract.entity_key, pa.string()),
        pa.field("model_name", pa.string()), pa.field("model_version", pa.string()),
        pa.field("score", pa.float64()), pa.field("decision", pa.string()),
        pa.field("served_at", TIMESTAMP), pa.field("latency_ms", pa.float64()),
    ], metadata={"contract": contract.name, "schema_hash": contract.schema_hash()})


def codec_for(contract: Contract, kind: str) -> TopicCodec:
    """The codec of a logical topic: telemetry, outcomes or predictions."""
    limit = contract.limits.max_event_bytes
    if kind == "telemetry":
        return TopicCodec(kind, contract.arrow_schema(), lambda df: check_records(contract, df), limit,
                          lambda table: invalid_rows(contract, table))
    if kind == "outcomes":
        return TopicCodec(kind, contract.label_arrow_schema(), lambda df: _check_required(df, contract.label_arrow_schema(), {contract.label.field: (0, 1)}), limit)
    if kind == "predictions":
        schema = prediction_schema(contract)
        return TopicCodec(kind, schema, lambda df: _check_required(df, schema, {}, score=True), limit)
    raise ValueError(f"unknown topic kind {kind!r}; expected telemetry, outcomes or predictions")


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


def _check_required(df: pd.DataFrame, schema: pa.Schema, allowed: dict, score: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Vectorized checks for the product's own records (outcomes, predictions): required fields present
    and typed, label values allowed, scores in [0, 1]."""
    reasons = pd.Series("", index=df.index, dtype=object)
    for field in schema:
        col = df[field.name] if field.name in df.columns else pd.Series(None, index=df.index, dtype=object)
        if pa.types.is_timestamp(field.type):
            parsed = pd.to_datetime(col, utc=True, format="ISO8601", errors="coerce") if col.dtype == object else col
            bad = parsed.isna() & col.notna()
            reasons[bad] += f"{field.name} must be an ISO-8601 time; "
            df = df.assign(**{field.name: parsed})
        elif pa.types.is_integer(field.type) or pa.types.is_floating(field.type):
            num = pd.to_numeric(col, errors="coerce")
            bad = num.isna() & col.notna()
            reasons[bad] += f"{field.name} must be a number; "
            if field.name in allowed:
                lo, hi = allowed[field.name][0], allowed[field.name][-1]
                off = num.notna() & ~num.isin(allowed[field.name])
                reasons[off] += f"{field.name} must be one of {lo}..{hi}; "
            df = df.assign(**{field.name: num})
        else:
            if pd.api.types.infer_dtype(col, skipna=True) in ("string", "empty"):
                bad = pd.Series(False, index=df.index)
            else:
                bad = col.notna() & ~col.map(lambda v: isinstance(v, str)).astype(bool)
            reasons[bad] += f"{field.name} must be a string; "
        if not field.nullable:
            reasons[col.isna()] += f"{field.name} is missing; "
    if score and "score" in df.columns:
        reasons[(df["score"] < 0) | (df["score"] > 1)] += "score outside [0, 1]; "
    bad = reasons != ""
    rejects = df[bad].copy()
    rejects["reason"] = reasons[bad].str.rstrip("; ")
    return df[~bad], rejects
