"""Benchmark: continuum-backtest's three default policies (never, every 24 windows, the configured one)
on 100 hourly windows of 1,000 rows each, in one process.

    python bench/backtest.py            # 124 hours x 1,000 rows: 24 of history, then 100 windows; median of 3
    python bench/backtest.py --quick    # 30 hours x 200 rows, one run (the tests' smoke check)

The rows come from the simulator (the default contract, a covariate and concept change at the 60th
window), written to a Parquet file with its event-time column, so the run reads the file as a user's
file is read. What is timed is what `continuum-backtest` spends: reading and decoding the file,
validating every hour with the contract's suite (once, shared by the policies), and playing the three
policies (drift, live metrics, decisions, retrains and gates). The baseline, measured in the same run,
is the `never` policy alone (serving every window with the first champion, no monitoring). Writes
bench/results/backtest.json (with --quick only when --out is given).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ml.backtest.data import load_stream
from ml.backtest.policies import configured, every, never
from ml.backtest.summary import BacktestOptions, run_policies, summarize
from ml.contract import load_contract
from ml.replay import ReplayOptions
from ml.settings import RetrainSettings, MonitorSettings
from ml.simulate.scenarios import parse_scenario
from ml.simulate.stream import SimConfig, Simulator
from results_file import RESULTS as RESULTS_DIR, save_figures

RESULTS = RESULTS_DIR / "backtest.json"
START = datetime(2026, 2, 1, tzinfo=timezone.utc)
HOUR_MS = 3_600_000


def write_file(contract, path: Path, hours: int, rows: int) -> Path:
    """`hours` hours of `rows` labelled events each, changing at hour `hours // 2`."""
    t0 = int(START.timestamp() * 1000)
    change = f"+{hours // 2}h"
    scenarios = tuple(parse_scenario(s, t0) for s in (f"covariate@{change}", f"concept@{change}"))
    sim = Simulator(contract, SimConfig(devices=50, rate=rows / 3600, seed=7, scenarios=scenarios))
    sim.frame(t0, t0 + hours * HOUR_MS, with_label=True).to_parquet(path, index=False)
    return path


def play(path: Path, contract, specs, history: int) -> tuple[float, list]:
    t0 = time.perf_counter()
    stream = load_stream(str(path), contract, ReplayOptions(time_column=contract.event_time), timedelta(minutes=10))
    runs = run_policies(stream, specs, BacktestOptions(history_hours=history))
    return time.perf_counter() - t0, runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 hours x 200 rows, one run")
    parser.add_argument("--runs", type=int, help="runs to take the median of (default 3; 1 with --quick)")
    parser.add_argument("--out", type=Path, help=f"where to write the figures (default {RESULTS}, not with --quick)")
    args = parser.parse_args(argv)
    hours, rows, history = (30, 200, 12) if args.quick else (124, 1000, 24)
    runs = args.runs or (1 if args.quick else 3)
    contract = load_contract("machine_telemetry")
    monitor = MonitorSettings(retrain=RetrainSettings(search_seconds=10.0, min_rows=500 if args.quick else 1000))
    with tempfile.TemporaryDirectory(prefix="continuum-bench-") as tmp:
        path = write_file(contract, Path(tmp) / "telemetry.parquet", hours, rows)
        timed = [play(path, contract, [never(monitor), every(24, monitor), configured(monitor)], history)
                 for _ in range(runs)]
        baseline, _ = play(path, contract, [never(monitor)], history)  # after the first run warmed GX's imports
    seconds = statistics.median(t for t, _ in timed)
    summary = summarize(timed[-1][1])
    windows = hours - history
    print(f"{'':28}{'seconds':>10}{'windows':>10}{'rows/window':>13}{'retrains':>10}")
    print(f"{'baseline: never alone':28}{baseline:>10.1f}{windows:>10}{rows:>13}{0:>10}")
    trained = sum(p["retrains"] for p in summary["policies"])
    print(f"{f'3 policies (median of {runs})':28}{seconds:>10.1f}{windows:>10}{rows:>13}{trained:>10}")
    print(f"ratio to the baseline {seconds / baseline:.2f}; target 100 windows x 1,000 rows < 120 s: "
          f"{'met' if seconds < 120 else 'MISSED'}{' (quick run: not the target size)' if args.quick else ''}")
    save_figures("backtest", {
        "seconds": round(seconds, 2), "windows": windows, "rows_per_window": rows,
        "baseline_seconds": round(baseline, 2), "ratio_to_baseline": round(seconds / baseline, 2),
        "retrains": trained, "policies": [p["policy"] for p in summary["policies"]],
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cores": os.cpu_count(),
        "notes": f"simulator rows (machine_telemetry, covariate + concept change at hour {hours // 2}) in a Parquet "
                 f"file; {history} hours of history then {windows} windows; read + GX validation of every hour + "
                 f"the three default policies (search budget 10 s); median of {runs}; baseline = never alone",
    }, args.quick, args.out)
    return 0 if seconds < 120 or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
