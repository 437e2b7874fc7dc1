"""Small offloaded lake hours for unit tests: served predictions and observed outcomes of a few events,
published as the offload publishes them (files and manifest)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from ml.contract import load_contract
from ml.contract.codec import codec_for
from ml.lake import Lake
from ml.lake.window import Window
from ml.offload.writer import HourWriter

CONTRACT = load_contract("machine_telemetry")
THRESHOLD = 0.5


def publish(lake: Lake, kind: str, hour: datetime, df: pd.DataFrame, ts_column: str) -> None:
    """One hour of `kind` holding the rows of `df`, stamped by `ts_column`."""
    window = Window.hour(hour)
    schema = codec_for(CONTRACT, kind).output_schema
    df = df.assign(kafka_partition=np.int32(0), kafka_offset=np.arange(len(df), dtype="int64"))
    writer = HourWriter(lake, kind, window, schema)
    writer.add(pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False), pa.table({}),
               df[ts_column].astype("int64").to_numpy())
    writer.publish({"topic": kind, "contract": CONTRACT.name, "schema_hash": CONTRACT.schema_hash(),
                    "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
                    "status": "offloaded", "validation": None})


def served(lake: Lake, hour: datetime, rows: list[tuple[str, str, float]], model: str = "machine-failure") -> None:
    """The predictions of the events of `hour`: (event id, version, score), alert at or above THRESHOLD."""
    ids, versions, scores = zip(*rows)
    scores = np.asarray(scores, dtype=float)
    at = pd.date_range(hour, periods=len(rows), freq="s", tz="UTC").astype("datetime64[ms, UTC]")
    publish(lake, "predictions", hour, pd.DataFrame({
        "event_id": ids, "device_id": "d-1", "model_name": model, "model_version": versions, "score": scores,
        "decision": np.where(scores >= THRESHOLD, "alert", "normal"), "served_at": at, "latency_ms": 2.0}),
        "served_at")


def observed(lake: Lake, hour: datetime, labels: dict[str, int]) -> None:
    """The outcomes observed in `hour` (an empty dict publishes an hour that held none)."""
    at = pd.Series(pd.date_range(hour + timedelta(minutes=1), periods=len(labels), freq="s", tz="UTC"))
    publish(lake, "outcomes", hour, pd.DataFrame({
        "event_id": pd.Series(list(labels), dtype=str), "device_id": "d-1",
        "failure": pd.Series(list(labels.values()), dtype="int64"),
        "observed_at": at.astype("datetime64[ms, UTC]")}), "observed_at")
