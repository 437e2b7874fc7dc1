"""A small local lake of validated telemetry hours and their observed outcomes, for the training tests
that read a window from the lake (the hours are published valid, as lake_offload leaves a passed hour)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np

from ml.lake import Lake
from ml.lake.window import Window
from ml.simulate.stream import SimConfig, Simulator
from tests.unit.lake_hours import CONTRACT, observed_outcomes, publish, publish_outcomes

START = datetime(2026, 11, 20, tzinfo=timezone.utc)


def write_window(lake: Lake, hours: int, rate: float, seed: int = 5) -> tuple[datetime, datetime]:
    """`hours` valid telemetry hours from START and their outcomes (observed 1-300 minutes after each
    event, filed by the hour observed); returns the window [start, end)."""
    end = START + timedelta(hours=hours)
    windows = Window(START, end).hours()
    events = Simulator(CONTRACT, SimConfig(devices=40, rate=rate, seed=seed)).frame(
        windows[0].start_ms, windows[-1].end_ms, with_label=True)
    for window in windows:
        publish(lake, "telemetry", window, events[(events["ts"] >= window.start) & (events["ts"] < window.end)],
                "ts", "valid")
    publish_outcomes(lake, observed_outcomes(events, np.random.default_rng(seed)))
    return START, end
