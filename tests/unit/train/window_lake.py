"""A small local lake of validated telemetry hours and their observed outcomes, for the training tests
that read a window from the lake (the hours are published valid, as lake_offload leaves a passed hour)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa

from ml.contract import load_contract
from ml.contract.codec import codec_for
from ml.lake import Lake
from ml.lake.window import Window
from ml.offload.writer import HourWriter
from ml.simulate.stream import SimConfig, Simulator

CONTRACT = load_contract("machine_telemetry")
START = datetime(2026, 11, 20, tzinfo=timezone.utc)


def _publish(lake: Lake, kind: str, window: Window, df: pd.DataFrame, ts_column: str, status: str) -> None:
    schema = codec_for(CONTRACT, kind).output_schema
    df = df.assign(kafka_partition=np.int32(0), kafka_offset=np.arange(len(df), dtype="int64"))
    writer = HourWriter(lake, kind, window, schema)
    writer.add(pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False), pa.table({}),
               df[ts_column].astype("int64").to_numpy())
    writer.publish({"topic": kind, "contract": CONTRACT.name, "schema_hash": CONTRACT.schema_hash(),
                    "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
                    "status": status, "validation": None})


def write_window(lake: Lake, hours: int, rate: float, seed: int = 5) -> tuple[datetime, datetime]:
    """`hours` valid telemetry hours from START and their outcomes (observed 1-300 minutes after each
    event, filed by the hour observed); returns the window [start, end)."""
    end = START + timedelta(hours=hours)
    windows = Window(START, end).hours()
    events = Simulator(CONTRACT, SimConfig(devices=40, rate=rate, seed=seed)).frame(
        windows[0].start_ms, windows[-1].end_ms, with_label=True)
    for window in windows:
        _publish(lake, "telemetry", window, events[(events["ts"] >= window.start) & (events["ts"] < window.end)],
                 "ts", "valid")
    delay = np.random.default_rng(seed).lognormal(np.log(20), 0.5, len(events)).clip(1, 300)
    outcomes = pd.DataFrame({"event_id": events["event_id"], "device_id": events["device_id"],
                             "failure": events["failure"].astype("int64"),
                             "observed_at": (events["ts"] + pd.to_timedelta(delay, unit="min")).dt.floor("ms")
                             .astype("datetime64[ms, UTC]")})
    for start, part in outcomes.groupby(outcomes["observed_at"].dt.floor("h")):
        _publish(lake, "outcomes", Window.hour(start.to_pydatetime()), part.sort_values("observed_at"),
                 "observed_at", "offloaded")
    return START, end
