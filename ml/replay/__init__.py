"""Replay a recorded data set: a CSV or Parquet file played as telemetry and late outcomes, hour by hour.

    source = FileSource(path, load_contract("tests/contracts/rainfall.yaml"),
                        ReplayOptions(rows_per_hour=100, start="2026-01-01T00:00Z"))
    for hour in source.hours():
        ...   # hour.telemetry and hour.outcomes are simulator Batches, ready for Kafka

Modules: `options` (what a replay is told), `read` (the file and its columns), `events` (rows as
simulator-shaped events), `source` (the hours, encoded).
"""

from ml.replay.options import ReplayError, ReplayOptions
from ml.replay.source import ROW_FIELD, FileSource, ReplayHour

__all__ = ["ROW_FIELD", "FileSource", "ReplayError", "ReplayHour", "ReplayOptions"]
