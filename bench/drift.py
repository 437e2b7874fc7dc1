"""Benchmark: the drift check on 1,000,000 current rows against 1,000,000 reference rows, and on 10,000,000
against 10,000,000 from the hours' summaries.

    python bench/drift.py            # 1,000,000 vs 1,000,000 rows (median of 3 runs), 10,000,000 vs 10,000,000 once
    python bench/drift.py --quick    # 50,000 vs 50,000 and 200,000 vs 200,000 rows, one run (the test suite runs this)

The rows come from the simulator (a day of a 2,000-machine fleet as reference; a window of 6 hours with
the covariate-drift scenario as current), published hour by hour to a local lake as the offload
publishes them, each hour with its drift summary (`bench/drift_lake.py`). Each measure runs in a process
of its own, so its peak RSS is its own:
- today's check: both sides' model columns read from Parquet, then `detect_drift` timed with the default
  settings (each side sampled to `drift_sample_rows`, the Evidently report built);
- the summaries' check, timed whole as the monitor runs it for a window: read and merge the hours'
  summaries, decide with thresholds calibrated at the window's row count over every row, then draw the
  Evidently report on samples of the rows; at 1M rows (the per-window cost against today's) and at 10M;
- the naive baseline: a two-sample Kolmogorov-Smirnov test on every numeric feature and a chi-square test
  on every categorical one, on all the rows;
- accuracy: the sketch distances against Evidently's exact ones on every row at 1M (sketch_max_abs_error).
Prints a table and writes bench/results/drift.json (a --quick run writes only with --out).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import json

import pandas as pd

from drift_lake import build_lake, exact_scores, sketch_step
from ml.contract import load_contract
from ml.settings import load_settings
from results_file import peak_rss_mb, save_figures

def measure(mode: str, folder: Path) -> None:
    """In a child process: time one check; print seconds, peak RSS MB, drifted count, rows (and, for the
    summaries' check, its figures as JSON)."""
    if mode == "sketch":
        step = sketch_step(folder, load_settings().drift_sample_rows)
        print("BENCH", step["seconds"], peak_rss_mb(), step["drifted"], step["rows"])
        print("FIGURES", json.dumps(step))
        return
    if mode == "check":  # imported before the clock starts, as in a long-lived worker
        from ml.drift import detect_drift
    contract = load_contract("machine_telemetry")
    reference, current = pd.read_parquet(folder / "ref.parquet"), pd.read_parquet(folder / "cur.parquet")
    t0 = time.perf_counter()
    if mode == "check":
        drifted = len(detect_drift(contract, reference, current, load_settings().drift)[0].drifted)
    else:
        drifted = naive_check(contract, reference, current)
    seconds = time.perf_counter() - t0
    print("BENCH", seconds, peak_rss_mb(), drifted, len(current))


def naive_check(contract, reference: pd.DataFrame, current: pd.DataFrame) -> int:
    """The baseline: p-value tests on every row (KS for numeric, chi-square for categorical); drifted at p < 0.05."""
    from scipy.stats import chi2_contingency, ks_2samp

    drifted = 0
    categorical = {f.name for f in contract.features if f.kind == "categorical"}
    for name in contract.model_columns:
        if name in categorical:
            counts = pd.DataFrame({"ref": reference[name].value_counts(), "cur": current[name].value_counts()})
            counts = counts[counts.sum(axis=1) > 0]
            p = chi2_contingency(counts.to_numpy()).pvalue
        else:
            p = ks_2samp(reference[name].dropna(), current[name].dropna()).pvalue
        drifted += p < 0.05
    return drifted


def run_child(mode: str, folder: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--measure", mode, "--data", str(folder)],
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{proc.stderr[-3000:]}")
    line = next(l for l in proc.stdout.splitlines() if l.startswith("BENCH"))
    seconds, rss, drifted, rows = line.split()[1:]
    extra = next((json.loads(l[8:]) for l in proc.stdout.splitlines() if l.startswith("FIGURES ")), {})
    return {"seconds": float(seconds), "rss": float(rss), "drifted": int(drifted), "rows": int(rows), **extra}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50,000 and 200,000 rows a side, one run")
    parser.add_argument("--rows", type=int, help="rows on each side (default 1,000,000; 50,000 with --quick)")
    parser.add_argument("--big-rows", type=int, help="rows on each side of the summaries-only run "
                                                     "(default 10,000,000; 200,000 with --quick)")
    parser.add_argument("--runs", type=int, help="runs to take the median of (default 3; 1 with --quick)")
    parser.add_argument("--out", type=Path, help="where to write the figures (default bench/results/drift.json, "
                                                  "a --quick run writes only when given this)")
    parser.add_argument("--measure", choices=("check", "naive", "sketch"), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        measure(args.measure, args.data)
        return 0
    rows = args.rows or (50_000 if args.quick else 1_000_000)
    big_rows = args.big_rows or (200_000 if args.quick else 10_000_000)
    runs = args.runs or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory() as tmp:
        data, big = Path(tmp) / "data", Path(tmp) / "big"
        data.mkdir()
        build_lake(rows, data, frames=data)
        checks, naive, sketches = [], [], []
        for _ in range(runs):
            checks.append(run_child("check", data))
            naive.append(run_child("naive", data))
            sketches.append(run_child("sketch", data))
        exact = exact_scores(data)
        offload = build_lake(big_rows, big)
        large = run_child("sketch", big)
    seconds, base = statistics.median(c["seconds"] for c in checks), statistics.median(n["seconds"] for n in naive)
    window = statistics.median(s["seconds"] for s in sketches)
    error = max(abs(sketches[0]["scores"][name] - score) for name, score in exact.items())
    figures = {
        "seconds": round(seconds, 2), "peak_rss_mb": round(max(c["rss"] for c in checks), 1),
        "rows_per_s": round(checks[0]["rows"] / seconds, 1), "rows": checks[0]["rows"],
        "drifted_features": checks[0]["drifted"], "baseline_seconds": round(base, 2),
        "baseline_peak_rss_mb": round(max(n["rss"] for n in naive), 1), "baseline_drifted_features": naive[0]["drifted"],
        "sketch_window_seconds": round(window, 2), "sketch_window_peak_rss_mb": round(max(s["rss"] for s in sketches), 1),
        "window_cost_ratio": round(window / seconds, 2), "sketch_drifted_features": sketches[0]["drifted"],
        "sketch_max_abs_error": round(error, 5),
        "rows_10m": large["rows"], "rows_10m_seconds": round(large["seconds"], 2),
        "rows_10m_decision_seconds": round(large["decision_seconds"], 2), "rows_10m_peak_rss_mb": round(large["rss"], 1),
        "rows_10m_drifted_features": large["drifted"],
        "summarize_seconds_per_million_rows": round(offload["summarize_seconds"] / offload["summarized_rows"] * 1e6, 2),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cores": os.cpu_count(),
        "notes": (f"median of {runs}; {checks[0]['rows']:,} current rows (6 h, covariate drift) vs as many reference "
                  f"rows (1 day), 10 model columns; detect_drift with the default settings (each side sampled to "
                  f"{load_settings().drift_sample_rows:,} rows, Wasserstein/Jensen-Shannon, Evidently report built); "
                  "rows_per_s = current rows / seconds; peak RSS of the checking process, both frames included; "
                  "baseline = KS / chi-square p-value tests on all rows; sketch_window = the monitor's drift step "
                  "from the hours' summaries (read, merge, calibrated decision on every row, Evidently report on "
                  "samples), window_cost_ratio = sketch_window / today's check on the same rows; "
                  "sketch_max_abs_error = largest |sketch - Evidently exact distance on every row| at "
                  f"{checks[0]['rows']:,}; rows_10m_* = the same step on {large['rows']:,} vs as many rows (one run), "
                  "rows_10m_decision_seconds without the report; summarize_seconds_per_million_rows = the "
                  "offload's cost of the hour summaries"),
    }
    print(f"{'':38}{'seconds':>10}{'peak MB':>10}{'rows/s':>14}{'drifted':>9}")
    for label, secs, rss, n, drifted in (
            ("drift check (sampled, Evidently)", seconds, figures["peak_rss_mb"], checks[0]["rows"],
             figures["drifted_features"]),
            ("summaries' check (every row)", window, figures["sketch_window_peak_rss_mb"], sketches[0]["rows"],
             sketches[0]["drifted"]),
            (f"summaries' check, {large['rows']:,} rows", large["seconds"], large["rss"], large["rows"], large["drifted"]),
            ("baseline: KS/chi2 on all rows", base, figures["baseline_peak_rss_mb"], checks[0]["rows"],
             figures["baseline_drifted_features"])):
        print(f"{label:38}{secs:>10.2f}{rss:>10.0f}{n / secs:>14,.0f}{drifted:>9}")
    print(f"sketch vs exact distances: largest gap {error:.5f}; per-window cost {window / seconds:.2f}x today's")
    met = (seconds < 60 and figures["peak_rss_mb"] < 4096 and large["seconds"] < 60 and large["rss"] < 2048
           and window / seconds <= 1.5)
    print(f"rows {rows:,} vs {rows:,} and {big_rows:,} vs {big_rows:,}; targets < 60 s, < 4,096 MB (1M), < 2,048 MB "
          f"(10M), per-window cost <= 1.5x: {'met' if met else 'MISSED'}")
    save_figures("drift", figures, args.quick, args.out)
    return 0 if met or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
