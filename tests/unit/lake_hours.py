"""Lake hours for tests and benchmarks, published as the offload publishes them (files, manifest, and
for telemetry its drift summary when asked): any frame as one hour (`publish`), simulated events'
outcomes observed minutes to hours later (`observed_outcomes`), and small hours of served predictions
and observed labels for unit tests."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from ml.contract import load_contract
from ml.contract.codec import codec_for
from ml.drift.hours import encode, summarize_parquet
from ml.lake import Lake
from ml.lake.window import Window
from ml.offload.writer import HourWriter
from ml.simulate.stream import SimConfig, Simulator

CONTRACT = load_contract("machine_telemetry")
THRESHOLD = 0.5


def publish(lake: Lake, kind: str, hour: datetime | Window, df: pd.DataFrame, ts_column: str,
            status: str = "offloaded", summarize=None) -> dict:
    """One hour of `kind` holding the rows of `df`, stamped by `ts_column`, with the manifest's `status`
    (`valid`: as lake_offload leaves an hour that passed validation) and the summary `summarize` makes
    of its files, if given; returns the manifest."""
    window = hour if isinstance(hour, Window) else Window.hour(hour)
    schema = codec_for(CONTRACT, kind).output_schema
    df = df.assign(kafka_partition=np.int32(0), kafka_offset=np.arange(len(df), dtype="int64"))
    writer = HourWriter(lake, kind, window, schema)
    writer.add(pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False), pa.table({}),
               df[ts_column].astype("int64").to_numpy())
    return writer.publish({"topic": kind, "contract": CONTRACT.name, "schema_hash": CONTRACT.schema_hash(),
                           "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
                           "status": status, "validation": None}, summarize=summarize)


def observed_outcomes(events: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Each simulated event's outcome (its label), observed 1 to 300 minutes after the event (lognormal
    around 20), as the outcomes topic carries it."""
    delay = pd.to_timedelta(rng.lognormal(np.log(20), 0.5, len(events)).clip(1, 300), unit="min")
    return pd.DataFrame({"event_id": events["event_id"], "device_id": events["device_id"],
                         "failure": events["failure"].astype("int64"),
                         "observed_at": (events["ts"] + delay).dt.floor("ms").astype("datetime64[ms, UTC]")})


def publish_outcomes(lake: Lake, outcomes: pd.DataFrame) -> None:
    """`outcomes` filed by the hour each was observed in."""
    for start, part in outcomes.groupby(outcomes["observed_at"].dt.floor("h")):
        publish(lake, "outcomes", start.to_pydatetime(), part.sort_values("observed_at"), "observed_at")


def telemetry(lake: Lake, window: Window, rows: int, seed: int = 1, summarize: bool = True) -> dict:
    """About `rows` simulated readings of 50 machines in the hour of `window`; returns its manifest."""
    df = Simulator(CONTRACT, SimConfig(devices=50, rate=rows / 3600, seed=seed)).frame(window.start_ms, window.end_ms,
                                                                                        with_label=False)
    make = (lambda paths: encode(summarize_parquet(CONTRACT, paths))) if summarize else None
    return publish(lake, "telemetry", window.start, df, "ts", summarize=make)


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
