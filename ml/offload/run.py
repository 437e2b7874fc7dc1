"""Offload one hour of one topic from Kafka to the lake (usable with or without Airflow)."""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Callable, ContextManager, Iterator

import numpy as np
import pyarrow as pa

from ml.contract import Contract
from ml.contract.codec import codec_for
from ml.contract.decode import RawBatch, decode, ndjson, reject_table
from ml.drift.hours import encode, summarize_parquet
from ml.kafka import window_reader
from ml.lake import Lake
from ml.lake.window import HOUR, Window
from ml.offload.pipeline import Worker, prefetched
from ml.offload.reader import partition_ranges, read_window
from ml.offload.screen import check_times, duplicates, fingerprints, repeated, suspects
from ml.offload.writer import HourWriter

log = logging.getLogger(__name__)
PARSERS = 2  # batches parsed at once


def window_consumer(client_config: dict):
    """A consumer for reading by time window: no group offsets, nothing committed, ever."""
    from confluent_kafka import Consumer

    return Consumer(window_reader(client_config))


def offload_hour(consumer, lake: Lake, contract: Contract, kind: str, topic: str, window: Window,
                 lateness: timedelta, batch_size: int = 10_000, max_skew: timedelta | None = None,
                 progress: Callable[[str], None] | None = None,
                 tuning: Callable[[], ContextManager] = contextlib.nullcontext) -> dict:
    """Read the records of `topic` whose timestamp falls in the window and write them to the lake.

    Telemetry rows whose event time is out of the hour's bounds, or further than `max_skew` (when
    given) from their Kafka timestamp, and repeats of an event id are quarantined with their reasons
    (see `ml.offload.screen`). `progress` is told each step of the publish (see `HourWriter.publish`).
    Returns the hour's manifest: offsets per partition, rows, quarantined records by reason, time
    bounds, schema hash and file checksums. Rerunning the same hour rewrites the same content. A
    telemetry hour is published with its drift summary (`ml.drift.hours`), made from the staged files.
    Process-wide settings are the caller's to choose: `tuning` is entered around the read, parse and
    write of the records only (an entry point passes `ml.runtime.offload_tuning`, which puts back what
    it changed when the records are written); by default nothing process-wide changes.
    """
    codec = codec_for(contract, kind)
    ranges = partition_ranges(consumer, topic, window, lateness)
    writer = HourWriter(lake, kind, window, codec.output_schema, unique=(contract.event_id, "kafka_offset"))
    telemetry = kind == "telemetry"
    read, strays, prints = 0, [], []

    def prepared() -> Iterator[RawBatch]:  # on the reading thread
        for batch in read_window(consumer, topic, window, ranges, batch_size=batch_size):
            if not batch.in_window.all():
                strays.append(batch.take(~batch.in_window))
                batch = batch.take(batch.in_window)
                if not len(batch):
                    continue
            batch.ndjson = ndjson(codec, batch.values)
            yield batch

    def parse(batch: RawBatch) -> tuple[pa.Table, pa.Table, np.ndarray | None]:  # on a parsing thread
        valid, rejects = decode(codec, batch)
        if not telemetry:
            return valid, rejects, None
        valid, late = check_times(valid, batch, contract.event_time, window, lateness, max_skew)
        rejects = pa.concat_tables([rejects, late]) if late.num_rows else rejects
        return valid, rejects, fingerprints(valid.column(contract.event_id))

    try:
        # a pipeline: read and prepare (one thread) | parse and check (two batches at a time, since the
        # parse is the longest step and mostly outside the GIL) | write Parquet (one thread, in order)
        with tuning(), Worker(writer.add, name="offload-writer") as write, \
                ThreadPoolExecutor(PARSERS, thread_name_prefix="offload-parse") as parsers:
            parsing: deque = deque()

            def write_oldest() -> None:
                nonlocal read
                batch, parsed = parsing.popleft()
                valid, rejects, fingerprint = parsed.result()
                write(valid, rejects, batch.timestamps)
                if fingerprint is not None:
                    prints.append(fingerprint)
                read += len(batch)

            for batch in prefetched(prepared()):
                parsing.append((batch, parsers.submit(parse, batch)))
                if len(parsing) == PARSERS:
                    write_oldest()
            while parsing:
                write_oldest()
        for stray in strays:
            writer.reject(_missed(consumer, topic, window, stray, lateness))
        if telemetry:
            rows = suspects(writer.scan([contract.event_id]), contract.event_id, repeated(prints))
            repeats, drop = duplicates(consumer, topic, window, rows, contract.event_id)
            for partition, offsets in drop.items():
                writer.drop(partition, offsets)
            writer.reject(repeats)
        manifest = {
            "topic": kind, "kafka_topic": topic, "contract": contract.name, "schema_hash": contract.schema_hash(),
            "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
            "lateness_seconds": int(lateness.total_seconds()),
            "max_skew_seconds": int(max_skew.total_seconds()) if telemetry and max_skew is not None else None,
            "offsets": {str(r.partition): {"start": r.start_offset, "end": r.end_offset} for r in ranges},
            "records_in_window": read, "status": "offloaded", "validation": None,
        }
        summarize = (lambda paths: encode(summarize_parquet(contract, paths))) if telemetry else None
        manifest = writer.publish(manifest, progress, summarize)
    finally:
        writer.abort()  # staged files go, whatever happened
    log.info("offloaded %s %s: %d rows, %d quarantined %s, generation %s", topic, window.partition_path,
             manifest["rows"], manifest["quarantined"], manifest["quarantine_reasons"], manifest["generation"])
    return manifest


def _missed(consumer, topic: str, window: Window, strays: RawBatch, lateness: timedelta):
    """Records of this window's segment whose own hour could not find them: rejects saying why."""
    hour_ms = int(HOUR.total_seconds() * 1000)
    starts = strays.timestamps // hour_ms * hour_ms
    missed, reasons = [], []
    for start in np.unique(starts).tolist():
        own = Window.hour(datetime.fromtimestamp(start / 1000, timezone.utc))
        ranges = {r.partition: r for r in partition_ranges(consumer, topic, own, lateness)}
        for i in np.flatnonzero(starts == start).tolist():
            r, offset = ranges[int(strays.partitions[i])], int(strays.offsets[i])
            if r.start_offset <= offset < r.end_offset:
                continue  # its own hour reads it
            when = "late" if offset >= r.end_offset else "early"
            missed.append(i)
            reasons.append(f"{when}: event time {_iso(strays.timestamps[i])} is more than the allowed lateness "
                           f"({lateness}) out of order; its hour {own.start:%Y-%m-%dT%H} does not read offset "
                           f"{offset}, so it is kept here, in the hour {window.start:%Y-%m-%dT%H}")
    return reject_table(strays, np.asarray(missed, dtype=np.int64), reasons)


def _iso(ms) -> str:
    return datetime.fromtimestamp(int(ms) / 1000, timezone.utc).isoformat(timespec="milliseconds")
