"""bench/train.py's lake part: a week of simulated hours written to a local lake, and one retrain's
path timed on it in a process of its own (so its peak RSS is its own).

    write_lake(folder, rows)                         # telemetry (valid) + outcomes, hour by hour
    run_path("stream", folder, start, end)           # -> {"seconds", "rss", "auc", "rows", ...}

Paths: `memory` (the window read into one frame, as every retrain did), `stream` (hour files through a
QuantileDMatrix data iterator), `extmem` (the same with ExtMemQuantileDMatrix, pages on disk) and
`dask` (the final fit on a LocalCluster of two worker processes; their peak RSS is reported apart).
Each runs `train_candidate`'s own `_fit` with the default settings but the path's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: the tests' lake-hour writer
from results_file import peak_rss_mb  # noqa: E402

START = datetime(2025, 11, 3, tzinfo=timezone.utc)
DAYS = 7
HOUR_MS = 3_600_000


def write_lake(folder: Path, rows: int, days: int = DAYS) -> tuple[datetime, datetime]:
    """`rows` events over `days` days as valid telemetry hours and their outcome hours; one hour in memory at a time."""
    from ml.contract import load_contract
    from ml.lake import Lake
    from ml.lake.window import Window
    from ml.simulate.stream import SimConfig, Simulator
    from tests.unit.lake_hours import observed_outcomes, publish

    contract, lake = load_contract("machine_telemetry"), Lake(str(folder))
    sim = Simulator(contract, SimConfig(devices=2000, rate=rows / (days * 86_400), seed=7))

    end = START + timedelta(days=days)
    pending: dict[pd.Timestamp, list[pd.DataFrame]] = {}
    rng = np.random.default_rng(7)
    for window in Window(START, end).hours():
        events = sim.frame(window.start_ms, window.end_ms, with_label=True)
        publish(lake, "telemetry", window, events, "ts", "valid")
        outcomes = observed_outcomes(events, rng)
        for hour, part in outcomes.groupby(outcomes["observed_at"].dt.floor("h")):
            pending.setdefault(hour, []).append(part)
        for hour in sorted(h for h in pending if h < pd.Timestamp(window.end) or window.end == end):
            publish(lake, "outcomes", hour.to_pydatetime(), pd.concat(pending.pop(hour)).sort_values("observed_at"),
                    "observed_at")
    return START, end


def hours_for(rows: int, total_rows: int, days: int = DAYS) -> int:
    """Whole hours of `days` days holding about `rows` of their `total_rows`."""
    return max(1, round(days * 24 * rows / total_rows))


def measure(path: str, folder: Path, start: datetime, end: datetime, search_seconds: float | None) -> None:
    """In a child process: one `_fit` on [start, end) along `path`; prints a BENCH line of JSON."""
    from ml.contract import load_contract
    from ml.lake import Lake
    from ml.settings import load_settings
    from ml.train.retrain import RetrainRequest, _fit

    settings = load_settings()
    update = {"search_seconds": search_seconds or settings.retrain.search_seconds,
              "stream_rows": 10**12 if path == "memory" else 1000,
              "extmem_rows": 1000 if path == "extmem" else settings.retrain.extmem_rows}
    cluster = None
    if path == "dask":
        from dask.distributed import LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)
        update["dask_scheduler"] = cluster.scheduler_address
    from dataclasses import replace

    retrain = replace(settings.retrain, **update)
    request = RetrainRequest("schedule", start, end, end + timedelta(hours=8))
    t0 = time.perf_counter()
    _, candidate = _fit(Lake(str(folder)), load_contract("machine_telemetry"), retrain, request)
    seconds = time.perf_counter() - t0
    workers = {}
    if cluster is not None:
        from dask.distributed import Client

        with Client(cluster) as client:
            workers = client.run(peak_rss_mb)
        cluster.close()
    print("BENCH " + json.dumps({
        "seconds": seconds, "rss": peak_rss_mb(), "workers_rss": sorted(workers.values()),
        "auc": candidate.metrics["holdout_roc_auc"], "rows": sum(candidate.rows.values()),
        "rounds": candidate.result.best_iteration + 1, "trials": len(candidate.result.trials)}))


def run_path(path: str, folder: Path, start: datetime, end: datetime, search_seconds: float | None = None) -> dict:
    """`measure` in a fresh process; its figures."""
    args = [sys.executable, str(Path(__file__).with_name("train.py")), "--measure", path, "--lake", str(folder),
            "--start", start.isoformat(), "--end", end.isoformat()]
    if search_seconds:
        args += ["--search-seconds", str(search_seconds)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=7200)
    if proc.returncode != 0:
        raise RuntimeError(f"{path} failed:\n{proc.stderr[-3000:]}")
    return json.loads(next(l for l in proc.stdout.splitlines() if l.startswith("BENCH "))[6:])
