"""Write one hour of one topic to the lake: Parquet per Kafka partition, quarantine, manifest.

Rows stream into one staged Parquet file per Kafka partition in fixed-size row groups, so memory stays
flat however large the hour and a rerun over the same records writes byte-identical files.

An hour is published as a generation: its files are named after a digest of their content
(`layout.part_key`, `layout.rejects_key`), written beside the live generation's, and the one write of
the manifest (`layout.manifest_key`), which lists them, is the commit point. Only then are the hour's other files deleted. Readers read the files the manifest names, so they
see the old hour or the new one, never a mix, wherever a rerun stops; the next run deletes what a
stopped one left. The same content gives the same generation, so a rerun rewrites identical files.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml.lake import Lake
from ml.lake.layout import (manifest_hash, manifest_key, part_key, quarantine_prefix, raw_prefix, rejects_key,
                            summary_key)
from ml.lake.window import Window

ROW_GROUP_ROWS = 50_000
COMPRESSION = "zstd"
GENERATION_CHARS = 16


@dataclass
class _PartFile:
    path: Path
    writer: pq.ParquetWriter | None
    buffer: list[pa.Table] = field(default_factory=list)
    buffered: int = 0
    rows: int = 0
    first: int = -1
    last: int = -1


class HourWriter:
    """Accumulates the decoded batches of one topic-hour and publishes them with a manifest."""

    def __init__(self, lake: Lake, topic_kind: str, window: Window, schema: pa.Schema, unique: tuple[str, ...] = ()):
        self.lake, self.kind, self.window, self.schema = lake, topic_kind, window, schema
        self.raw_prefix, self.quarantine_prefix = raw_prefix(topic_kind, window), quarantine_prefix(topic_kind, window)
        # dictionary-encode the columns that repeat; on columns unique per row (ids, offsets, times) the
        # dictionary only costs time before Parquet falls back to plain (measured: a third of the write
        # time, and files a quarter larger)
        self.dictionary = [f.name for f in schema if f.name not in unique and not pa.types.is_timestamp(f.type)]
        self.parts: dict[int, _PartFile] = {}
        self.rejects: list[pa.Table] = []
        self.min_ts: int | None = None
        self.max_ts: int | None = None
        self.rejects_path: Path | None = None
        lake.clean_staging(self.raw_prefix)
        lake.clean_staging(self.quarantine_prefix)

    def add(self, valid: pa.Table, rejects: pa.Table, timestamps_ms) -> None:
        """One decoded batch of the hour: its valid rows, its rejects and the timestamps it read."""
        if len(timestamps_ms):
            lo, hi = int(timestamps_ms.min()), int(timestamps_ms.max())
            self.min_ts = lo if self.min_ts is None else min(self.min_ts, lo)
            self.max_ts = hi if self.max_ts is None else max(self.max_ts, hi)
        self.reject(rejects)
        if not valid.num_rows:
            return
        partitions = valid.column("kafka_partition").to_numpy()
        present = np.unique(partitions).tolist()
        for p in present:
            self._append(p, valid if len(present) == 1 else valid.filter(pa.array(partitions == p)))

    def reject(self, rejects: pa.Table) -> None:
        """Rows kept in the hour's quarantine (in REJECT_SCHEMA), with their reasons."""
        if rejects.num_rows:
            self.rejects.append(rejects)

    def _append(self, p: int, rows: pa.Table) -> None:
        part = self.parts.get(p)
        if part is None:
            path = self.lake.temp_path(f"{self.raw_prefix}/part-{p}")
            part = self.parts[p] = _PartFile(path, self._parquet(path))
        offsets = rows.column("kafka_offset")
        part.first = offsets[0].as_py() if part.first < 0 else part.first
        part.last = offsets[-1].as_py()
        part.buffer.append(rows)
        part.buffered += rows.num_rows
        part.rows += rows.num_rows
        while part.buffered >= ROW_GROUP_ROWS:
            self._flush(part, ROW_GROUP_ROWS)

    def _parquet(self, path: Path) -> pq.ParquetWriter:
        return pq.ParquetWriter(path, self.schema, compression=COMPRESSION, use_dictionary=self.dictionary)

    def _flush(self, part: _PartFile, n: int) -> None:
        table = pa.concat_tables(part.buffer).combine_chunks() if len(part.buffer) > 1 else part.buffer[0]
        part.writer.write_table(table.slice(0, n), row_group_size=n)
        rest = table.slice(n)
        part.buffer, part.buffered = ([rest] if rest.num_rows else []), rest.num_rows

    def finish(self) -> None:
        """Write what is buffered and close the staged files (then `columns` and `drop` may read them)."""
        for part in self.parts.values():
            if part.writer is not None:
                if part.buffered:
                    self._flush(part, part.buffered)
                part.writer.close()
                part.writer = None

    def scan(self, names: list[str]) -> Iterator[pa.RecordBatch]:
        """The given columns of every row staged so far, with kafka_partition and kafka_offset, a record
        batch at a time: the hour is never held whole."""
        self.finish()
        wanted = list(dict.fromkeys([*names, "kafka_partition", "kafka_offset"]))
        for p in sorted(self.parts):
            yield from pq.ParquetFile(self.parts[p].path).iter_batches(columns=wanted)

    def drop(self, partition: int, offsets) -> None:
        """Remove the staged rows of a partition at the given Kafka offsets (rows written, then found
        to repeat an event): the partition's file is written again without them."""
        self.finish()
        part = self.parts[partition]
        table = pq.read_table(part.path)
        table = table.filter(pc.invert(pc.is_in(table.column("kafka_offset"), value_set=pa.array(offsets, pa.int64()))))
        part.path.unlink(missing_ok=True)
        if not table.num_rows:
            del self.parts[partition]
            return
        part.path = self.lake.temp_path(f"{self.raw_prefix}/part-{partition}")
        writer = self._parquet(part.path)
        for start in range(0, table.num_rows, ROW_GROUP_ROWS):
            chunk = table.slice(start, ROW_GROUP_ROWS)
            writer.write_table(chunk, row_group_size=chunk.num_rows)
        writer.close()
        offsets = table.column("kafka_offset")
        part.rows, part.first, part.last = table.num_rows, offsets[0].as_py(), offsets[-1].as_py()

    def publish(self, manifest: dict, progress: Callable[[str], None] | None = None,
                summarize: Callable[[list[Path]], bytes] | None = None) -> dict:
        """Publish the hour as a new generation and switch the manifest to it, then delete the hour's
        other files. `summarize` makes the hour's drift summary (`ml.drift.hours`) from its staged files;
        it is published with the generation, before the manifest, unless the generation already has one
        (the same content: a rerun rewrites identical files) or the hour has no rows. `progress` is told
        each step ("staged", "published <key>", "committed", "deleted <key>"), for logs and for tests
        that stop a run between two steps."""
        step = progress or (lambda name: None)
        try:
            self.finish()
            rejects = self._stage_rejects()
            entries = [(p, self.parts[p], _sha256(self.parts[p].path)) for p in sorted(self.parts)]
            generation = hashlib.sha256(json.dumps(
                [[p, part.first, part.last, digest] for p, part, digest in entries]
                + [rejects and rejects["sha256"]]).encode()).hexdigest()[:GENERATION_CHARS]
            files = [{"key": part_key(self.kind, self.window, p, part.first, part.last, generation), "partition": p,
                      "rows": part.rows, "first_offset": part.first, "last_offset": part.last,
                      "bytes": part.path.stat().st_size, "sha256": digest} for p, part, digest in entries]
            step("staged")
            kept = {summary_key(self.kind, self.window, generation)} if summarize and entries else set()
            for summary_at in kept:
                if not self.lake.exists(summary_at):
                    self.lake.write_bytes(summary_at, summarize([part.path for _, part, _ in entries]))
                    step(f"published {summary_at}")
            for entry, (_, part, _) in zip(files, entries):
                self.lake.publish(part.path, entry["key"])
                step(f"published {entry['key']}")
            if rejects:
                rejects["key"] = rejects_key(self.kind, self.window, generation)
                self.lake.publish(rejects.pop("path"), rejects["key"])
                step(f"published {rejects['key']}")
            reasons = rejects.pop("reasons") if rejects else {}
            manifest.update({
                "generation": generation, "rows": sum(f["rows"] for f in files), "files": files,
                "quarantined": rejects["rows"] if rejects else 0, "quarantine_reasons": reasons,
                "quarantine_file": rejects, "time_bounds": {"min_ms": self.min_ts, "max_ms": self.max_ts},
            })
            manifest["content_sha256"] = manifest_hash(manifest)
            key = manifest_key(self.kind, self.window)
            self.lake.write_text(key, json.dumps(manifest, indent=2, sort_keys=True))
            step("committed")
            keep = {f["key"] for f in files} | {key} | kept | ({rejects["key"]} if rejects else set())
            for stale in self.lake.list(self.raw_prefix) + self.lake.list(self.quarantine_prefix):
                if stale not in keep:
                    self.lake.delete(stale)
                    step(f"deleted {stale}")
            return manifest
        finally:
            self.abort()

    def _stage_rejects(self) -> dict | None:
        """The hour's rejects in one staged file, sorted by partition and offset, with their counts."""
        if not self.rejects:
            return None
        table = pa.concat_tables(self.rejects).sort_by([("kafka_partition", "ascending"), ("kafka_offset", "ascending")])
        self.rejects_path = self.lake.temp_path(f"{self.quarantine_prefix}/rejects")
        pq.write_table(table, self.rejects_path, compression=COMPRESSION)
        reasons = Counter(_reason_kind(r) for r in table.column("reason").to_pylist())
        return {"path": self.rejects_path, "rows": table.num_rows, "sha256": _sha256(self.rejects_path),
                "reasons": dict(sorted(reasons.items()))}

    def abort(self) -> None:
        """Remove every staged file (after a publish, or a failure at any step)."""
        for part in self.parts.values():
            if part.writer is not None:
                part.writer.close()
                part.writer = None
            part.path.unlink(missing_ok=True)
        if self.rejects_path is not None:
            self.rejects_path.unlink(missing_ok=True)


def _reason_kind(reason: str) -> str:
    """A coarse label for counting: the field a reason names, or its leading word."""
    head = reason.split(";")[0].strip()
    for sep in ("=", " ", ":"):
        head = head.split(sep)[0]
    return head or "unknown"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
