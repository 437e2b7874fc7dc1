"""The backtest played in process on what a paced run played, with the run's settings: its decisions per
window against those the run's monitor recorded in the lake (`ml.backtest.agree`)."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

from ml.backtest.agree import describe, disagreements, recorded_decisions, window_ends
from ml.backtest.data import Stream
from ml.backtest.policies import configured
from ml.backtest.summary import BacktestOptions, run_policies
from ml.lake import Lake
from ml.settings import GateSettings, MonitorSettings, OffloadSettings, load_settings


@contextmanager
def settings_of(env: dict):
    """The settings the run's processes read from `env` (its CONTINUUM_* variables, nothing else)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("CONTINUUM_")}
    try:
        for k in saved:
            del os.environ[k]
        os.environ.update({k: v for k, v in env.items() if k.startswith("CONTINUUM_")})
        yield load_settings()
    finally:
        for k in [k for k in os.environ if k.startswith("CONTINUUM_")]:
            del os.environ[k]
        os.environ.update(saved)


def backtest_disagreements(stream: Stream, settings, history_hours: int) -> str:
    """The configured policy played on `stream` from its first `history_hours` on; every window whose
    decision differs from the recorded one, one per line (the empty string when all agree)."""
    started, lateness = time.perf_counter(), OffloadSettings.from_settings(settings).lateness
    spec = configured(MonitorSettings.from_settings(settings), GateSettings.from_settings(settings))
    run, = run_policies(stream, [spec], BacktestOptions(history_hours, lateness))
    found = disagreements(recorded_decisions(Lake.from_settings(settings.lake), window_ends(run)), run)
    print(f"[backtest] {len(run.hours)} windows from {run.hours[0]['hour']:%Y-%m-%d %H:%M}Z in "
          f"{time.perf_counter() - started:.0f} s: {describe(found)}")
    return "\n".join(map(str, found))
