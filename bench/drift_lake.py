"""The drift benchmark's lake: simulated hours published as the offload publishes them, and the monitor's
drift step on it, from the hours' summaries (used by bench/drift.py).

`build_lake` writes a reference day (24 hours) and a 6-hour window with the covariate-drift scenario,
`rows` rows on each side, hour by hour through `HourWriter` with its drift summary (the time spent
summarizing is the offload's share of the cost, reported apart). `sketch_step` is what the monitor
does for one window: merge each side's hour summaries, decide with calibrated thresholds over every row,
and draw the Evidently report on samples of the rows.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ml.contract import load_contract, model_frame
from ml.contract.codec import codec_for
from ml.drift.hours import encode, summarize_parquet
from ml.lake import Lake
from ml.lake.layout import manifest_key
from ml.lake.window import Window
from ml.offload.writer import HourWriter
from ml.simulate.scenarios import parse_scenario
from ml.simulate.stream import SimConfig, Simulator

HOUR_MS = 3_600_000
START_MS = 1_763_596_800_000  # 2025-11-20T00:00Z: fixed, so every run compares the same rows
SIDES = {"reference": (0, 24), "current": (24, 6)}  # first hour, hours


def hour_windows(side: str) -> list[Window]:
    first, count = SIDES[side]
    return [Window.hour(pd.Timestamp(START_MS + (first + i) * HOUR_MS, unit="ms", tz="UTC").to_pydatetime())
            for i in range(count)]


def build_lake(rows: int, folder: Path, frames: Path | None = None) -> dict:
    """Publish both sides' hours to a local lake in `folder`; with `frames`, also write each side's model
    columns as one Parquet file there (today's check reads those). Returns the summarizing figures."""
    contract = load_contract("machine_telemetry")
    schema = codec_for(contract, "telemetry").output_schema
    lake, spent, summarized = Lake(str(folder)), [0.0], 0
    drift = (parse_scenario("covariate@+1d", START_MS),)

    def summarize(paths):
        t0 = time.perf_counter()
        out = encode(summarize_parquet(contract, paths))
        spent[0] += time.perf_counter() - t0
        return out

    for side, (_, count) in SIDES.items():
        sim = Simulator(contract, SimConfig(devices=2000, rate=rows / (count * 3600), seed=11,
                                            scenarios=drift if side == "current" else ()))
        parts = []
        for window in hour_windows(side):
            df = sim.frame(window.start_ms, window.end_ms, with_label=False)
            df = df.assign(kafka_partition=np.int32(0), kafka_offset=np.arange(len(df), dtype="int64"))
            writer = HourWriter(lake, "telemetry", window, schema)
            writer.add(pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False), pa.table({}),
                       df["ts"].astype("int64").to_numpy())
            writer.publish({"topic": "telemetry", "window": {"start": window.start.isoformat(),
                                                             "end": window.end.isoformat()}}, summarize=summarize)
            summarized += len(df)
            if frames is not None:
                parts.append(model_frame(contract, df))
        if frames is not None:
            pd.concat(parts, ignore_index=True).to_parquet(frames / f"{'ref' if side == 'reference' else 'cur'}.parquet")
    return {"summarize_seconds": spent[0], "summarized_rows": summarized}


def manifests(lake: Lake, side: str) -> list[dict]:
    return [json.loads(lake.read_text(manifest_key("telemetry", w))) for w in hour_windows(side)]


def sketch_step(folder: Path, sample_rows: int) -> dict:
    """The monitor's drift step for the window: seconds to the decision, seconds with the report, verdict."""
    from ml.drift import detect_drift, sketch_drift, window_sample, window_summary
    from ml.drift.detect import SAMPLE_SEED
    from ml.settings import DriftSettings

    contract, lake, drift = (load_contract("machine_telemetry"), Lake(str(folder)),
                             DriftSettings(sample_rows=sample_rows, calibrate=True))
    t0 = time.perf_counter()
    reference = window_summary(lake, contract, manifests(lake, "reference"))
    current = window_summary(lake, contract, manifests(lake, "current"))
    result = sketch_drift(contract, reference, current, drift)
    decided = time.perf_counter() - t0
    samples = [model_frame(contract, window_sample(lake, contract, manifests(lake, side), sample_rows, SAMPLE_SEED))
               for side in ("reference", "current")]
    _, snapshot = detect_drift(contract, *samples, drift, thresholds={f.name: f.threshold for f in result.features})
    with tempfile.TemporaryDirectory() as tmp:
        snapshot.save_html(str(Path(tmp) / "report.html"))
    return {"decision_seconds": decided, "seconds": time.perf_counter() - t0, "drifted": len(result.drifted),
            "rows": current.rows, "scores": {f.name: f.score for f in result.features}}


def exact_scores(frames: Path) -> dict[str, float]:
    """Evidently's distances on every row of both sides (no sample), per feature."""
    from ml.drift import measure_drift
    from ml.settings import DriftSettings

    contract = load_contract("machine_telemetry")
    reference, current = pd.read_parquet(frames / "ref.parquet"), pd.read_parquet(frames / "cur.parquet")
    everything = DriftSettings(sample_rows=max(len(reference), len(current)))
    return {f.name: f.score for f in measure_drift(contract, reference, current, everything).features}
