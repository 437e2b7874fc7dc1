"""A lake with history for the monitoring tests: a champion's training day, quiet hours, then drift.

Telemetry is simulated in one stream (so every hour continues the last), written as lake_offload leaves
it and validated by the real Great Expectations suite (two worker processes, as two Airflow workers
would); the outcomes land in the hours they were observed in; the champion's predictions are scored
with the serving code and filed under their event's hour, as the sidecar's are.
"""

from __future__ import annotations

import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from ml.contract import model_frame
from ml.lake import Lake
from ml.lake.window import Window
from ml.serving.model import check_model, load_version
from ml.simulate.stream import SimConfig, Simulator
from ml.validation import validate_hour
from tests.integration.training_data import CONTRACT, SUITE, _publish
from tests.unit.lake_hours import observed_outcomes, publish_outcomes

DEVICES, RATE, SEED = 40, 0.5, 5


def timeline(n: int, ended_hours_ago: int = 7) -> list[Window]:
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    return [Window.hour(now - timedelta(hours=ended_hours_ago + n - i)) for i in range(n)]


def simulate(hours: list[Window], scenarios: tuple = ()) -> pd.DataFrame:
    sim = Simulator(CONTRACT, SimConfig(devices=DEVICES, rate=RATE, seed=SEED, scenarios=scenarios))
    return sim.frame(hours[0].start_ms, hours[-1].end_ms, with_label=True)


def _in(events: pd.DataFrame, window: Window) -> pd.DataFrame:
    return events[(events["ts"] >= window.start) & (events["ts"] < window.end)]


def _validate(args) -> str:
    uri, start = args
    return validate_hour(Lake(uri), CONTRACT, "telemetry", Window.hour(start), SUITE).status


def write_telemetry(lake: Lake, hours: list[Window], events: pd.DataFrame) -> None:
    """Each hour's telemetry, then Great Expectations on every hour (all must pass)."""
    for window in hours:
        _publish(lake, "telemetry", window, _in(events, window), "ts")
    # spawned, not forked: a fork copies this process's threads' locks (an in-process Airflow API loop, a
    # progress monitor), and a child that inherits one held can wait on it forever
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        statuses = list(pool.map(_validate, [(lake.uri, w.start.isoformat()) for w in hours]))
    assert set(statuses) == {"valid"}, statuses


def write_outcomes(lake: Lake, events: pd.DataFrame, seed: int = SEED) -> None:
    """Each event's outcome, observed minutes to hours later, in the hour it was observed in."""
    publish_outcomes(lake, observed_outcomes(events, np.random.default_rng(seed)))


def write_predictions(lake: Lake, hours: list[Window], events: pd.DataFrame, tracking_uri: str, name: str,
                      version: str) -> None:
    """The version's scores of each hour's events, as the sidecar's prediction records."""
    model = check_model(load_version(tracking_uri, name, version, lake), CONTRACT)
    for window in hours:
        part = _in(events, window)
        scores = model.predict(model_frame(CONTRACT, part))
        preds = pd.DataFrame({
            "event_id": part["event_id"].to_numpy(), "device_id": part["device_id"].to_numpy(),
            "model_name": name, "model_version": str(version), "score": scores,
            "decision": np.where(scores >= model.threshold, "alert", "normal"),
            "served_at": (part["ts"] + pd.Timedelta(milliseconds=40)).astype("datetime64[ms, UTC]").to_numpy(),
            "latency_ms": 40.0, "ts": part["ts"].to_numpy()})
        _publish(lake, "predictions", window, preds, "ts")


def copy_prefix(source: Lake, target: Lake, prefix: str) -> None:
    """Copy part of a local lake (hours, their manifests and validation) to another local lake."""
    shutil.copytree(source.root / prefix, target.root / prefix, dirs_exist_ok=True)
