"""Decode a micro-batch of raw telemetry into the rows to score and the dead letters, with the contract's rules.

Two paths, one set of rules and reasons: a large batch goes through the offload's vectorized decoder
(`ml.contract.decode`: one Arrow parse, `check_records`), whose fixed cost pays off over thousands of
rows; a small batch, the common case at low traffic where latency matters most, goes event by event
through `decode_event`, which costs microseconds per event and nothing per batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from ml.contract import Contract, ContractError, decode_event
from ml.contract.codec import TopicCodec
from ml.contract.decode import RawBatch, decode, ndjson

SMALL_BATCH = 400  # below this many events the per-event path is faster than the vectorized one (measured)


@dataclass
class Decoded:
    """The valid events of a batch (raw features and entity key, in batch order) and the rest as dead letters.
    Its events stay as decoded (dicts for a small batch, an Arrow table for a large one); the pandas frame
    is built only if it is asked for."""

    ids: pa.Array
    devices: pa.Array
    keep: np.ndarray  # True for the batch positions of the valid events
    dead: list  # (key, value, headers)
    table: pd.DataFrame | None = None
    rows: list[dict] | None = None  # a small batch: its events as `decode_event` gives them
    arrow: pa.Table | None = None  # a large batch: its checked records
    columns: tuple[str, ...] = ()
    plain: bool = False  # no string in the events needs JSON escaping: their raw JSON held no backslash

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def frame(self) -> pd.DataFrame:
        if self.table is None and self.arrow is not None:
            self.table = self.arrow.select(list(self.columns)).to_pandas()
        elif self.table is None:
            self.table = pd.DataFrame.from_records(self.rows, columns=list(self.columns)) if self.rows \
                else pd.DataFrame(columns=list(self.columns))
        return self.table


def decode_batch(contract: Contract, codec: TopicCodec, raw: RawBatch, topic: str) -> Decoded:
    """Split a batch into events to score and dead letters, each with its reason and source coordinates."""
    if len(raw) < SMALL_BATCH:
        return _per_event(contract, raw, topic)
    raw.ndjson = ndjson(codec, raw.values)
    valid, rejects = decode(codec, raw, threads=False)  # the sidecar scores batches on threads of its own
    dead = [(r["key"], r["value"], dead_letter_headers(r["reason"], topic, r["kafka_partition"], r["kafka_offset"]))
            for r in rejects.to_pylist()]
    keep = np.ones(len(raw), dtype=bool)
    if rejects.num_rows:
        bad = set(zip(rejects["kafka_partition"].to_pylist(), rejects["kafka_offset"].to_pylist()))
        keep = np.array([(p, o) not in bad for p, o in zip(raw.partitions.tolist(), raw.offsets.tolist())])
    return Decoded(valid[contract.event_id].combine_chunks(), valid[contract.entity_key].combine_chunks(),
                   keep, dead, arrow=valid, columns=(contract.entity_key, *contract.raw_columns),
                   plain=bool(raw.ndjson) and b"\\" not in raw.ndjson)


def _per_event(contract: Contract, raw: RawBatch, topic: str) -> Decoded:
    rows, dead = [], []
    keep = np.zeros(len(raw), dtype=bool)
    partitions, offsets = raw.partitions.tolist(), raw.offsets.tolist()
    for i, value in enumerate(raw.values):
        try:
            if not value:
                raise ContractError("empty message")
            rows.append(decode_event(contract, value))
            keep[i] = True
        except ContractError as exc:
            dead.append((raw.keys[i], value, dead_letter_headers(str(exc), topic, partitions[i], offsets[i])))
    ids = pa.array([row[contract.event_id] for row in rows], pa.string())
    devices = pa.array([row[contract.entity_key] for row in rows], pa.string())
    return Decoded(ids, devices, keep, dead, rows=rows, columns=(contract.entity_key, *contract.raw_columns))


def dead_letter_headers(reason: str, topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
    """Where a dead letter came from and why it was refused; its value stays the original bytes."""
    return [("error", reason.encode()), ("source_topic", topic.encode()),
            ("source_partition", str(partition).encode()), ("source_offset", str(offset).encode())]


def dead_letter_size(key, value, headers: list) -> int:
    """A dead letter's bytes as counted against its limit: key, value, header names and values."""
    return len(key or b"") + len(value or b"") + sum(len(name) + len(text) for name, text in headers)


def bound_dead_letter(key, value, headers: list, limit: int) -> tuple:
    """A dead letter of at most `limit` bytes. One over the producer's message.max.bytes cannot be sent, and
    the stream cannot move past the record it stands for, at every restart; so a longer one keeps the
    prefix of its value that fits, with a `truncated` header giving the value's original size (a key or a
    header value over a quarter of the limit is cut to that quarter: they come from the record too)."""
    if dead_letter_size(key, value, headers) <= limit:
        return key, value, headers
    quarter = limit // 4
    key = key[:quarter] if key else key
    headers = [(name, text[:quarter]) for name, text in headers] + [("truncated", str(len(value or b"")).encode())]
    room = limit - dead_letter_size(key, None, headers)
    return key, (value or b"")[:max(room, 0)], headers


def bound_dead_letters(dead: list, limit: int) -> tuple[list, int]:
    """Every dead letter of a batch within `limit` bytes (`bound_dead_letter`), and how many were cut."""
    bounded = [bound_dead_letter(key, value, headers, limit) for key, value, headers in dead]
    return bounded, sum(b[2] is not d[2] for b, d in zip(bounded, dead))
