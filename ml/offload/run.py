"""Offload one hour of one topic from Kafka to the lake (usable with or without Airflow)."""

from __future__ import annotations

import ctypes
import logging
import queue
import threading
from datetime import datetime, timedelta, timezone
from typing import Iterator

import numpy as np

from ml.contract import Contract
from ml.lake import Lake
from ml.offload.decode import codec_for, decode, reject_table
from ml.offload.window import HOUR, RawBatch, Window, partition_ranges, read_window
from ml.offload.writer import HourWriter

log = logging.getLogger(__name__)


def window_consumer(client_config: dict):
    """A consumer for reading by time window: no group offsets, nothing committed, ever."""
    from confluent_kafka import Consumer

    config = {
        "group.id": "continuum-offload",  # required by the client; never joined or committed
        **client_config,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": False,
        "auto.offset.reset": "error",
        "fetch.max.bytes": 64 * 1024 * 1024,
        "max.partition.fetch.bytes": 8 * 1024 * 1024,
        # bound the client's prefetch queue: the offload reads a whole hour, so memory must not grow with it
        "queued.min.messages": 20_000,
        "queued.max.messages.kbytes": 32 * 1024,
    }
    return Consumer(config)


def hour_prefixes(kind: str, window: Window) -> tuple[str, str]:
    """Lake prefixes of an hour's raw files and its quarantine."""
    return f"raw/{kind}/{window.partition_path}", f"quarantine/{kind}/{window.partition_path}"


def manifest_key(kind: str, window: Window) -> str:
    """Lake key of an hour's manifest: readers start there, an hour without one is not offloaded."""
    return f"{hour_prefixes(kind, window)[0]}/_manifest.json"


def offload_hour(consumer, lake: Lake, contract: Contract, kind: str, topic: str, window: Window,
                 lateness: timedelta, batch_size: int = 20_000) -> dict:
    """Read the records of `topic` whose timestamp falls in the window and write them to the lake.

    Returns the hour's manifest: offsets per partition, rows, quarantined records by reason, time
    bounds, schema hash and file checksums. Rerunning the same hour rewrites the same content.
    """
    codec = codec_for(contract, kind)
    raw_prefix, quarantine_prefix = hour_prefixes(kind, window)
    ranges = partition_ranges(consumer, topic, window, lateness)
    writer = HourWriter(lake, raw_prefix, quarantine_prefix, codec.output_schema)
    read, strays = 0, []
    _limit_arenas()
    try:
        for batch in _prefetched(read_window(consumer, topic, window, ranges, batch_size=batch_size)):
            if not batch.in_window.all():
                strays.append(batch.take(~batch.in_window))
                batch = batch.take(batch.in_window)
                if not len(batch):
                    continue
            valid, rejects = decode(codec, batch)
            writer.add(valid, rejects, batch.timestamps)
            read += len(batch)
            del batch, valid, rejects
            _release_heap()
        for stray in strays:
            writer.reject(_missed(consumer, topic, window, stray, lateness))
    except BaseException:
        writer.abort()
        raise
    manifest = {
        "topic": kind, "kafka_topic": topic, "contract": contract.name, "schema_hash": contract.schema_hash(),
        "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
        "lateness_seconds": int(lateness.total_seconds()),
        "offsets": {str(r.partition): {"start": r.start_offset, "end": r.end_offset} for r in ranges},
        "records_in_window": read, "status": "offloaded", "validation": None,
    }
    manifest = writer.publish(manifest)
    log.info("offloaded %s %s: %d rows, %d quarantined, %d files", topic, window.partition_path,
             manifest["rows"], manifest["quarantined"], len(manifest["files"]))
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


def _limit_arenas() -> None:
    """At most two malloc arenas (one per thread of the offload) instead of one per thread and core."""
    if _LIBC is not None:
        _LIBC.mallopt(-8, 2)  # M_ARENA_MAX


def _release_heap() -> None:
    """Hand freed heap back to the OS after each batch: the many short-lived objects of decoding,
    freed from two threads, otherwise leave glibc's arenas fragmented and RSS creeping up over an hour."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to trim
        return None


_LIBC = _load_libc()


def _iso(ms) -> str:
    return datetime.fromtimestamp(int(ms) / 1000, timezone.utc).isoformat(timespec="milliseconds")


_DONE = object()


def _prefetched(batches: Iterator, depth: int = 2) -> Iterator:
    """Consume the next batches in a background thread while the caller decodes and writes this one
    (Arrow's JSON parser and the Parquet writer release the GIL); at most `depth` batches wait."""
    q: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def pump() -> None:
        try:
            for item in batches:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # handed to the caller
            q.put(exc)

    thread = threading.Thread(target=pump, name="offload-reader", daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=30)
