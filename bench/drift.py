"""Benchmark: the drift check on 1,000,000 current rows against 1,000,000 reference rows.

    python bench/drift.py            # 1,000,000 vs 1,000,000 rows, median of 3 runs
    python bench/drift.py --quick    # 50,000 vs 50,000 rows, one run (the test suite runs this)

The rows come from the simulator (a day of a 2,000-machine fleet as reference; a window with the
covariate-drift scenario as current), as the contract's model columns, saved to Parquet. Each run is a
process of its own that reads both frames and times `detect_drift` with the default settings (each
side sampled to `drift_sample_rows`, distances with thresholds, the Evidently report built), so its
peak RSS is its own, frames included. The baseline, measured in the same run on the same rows, is the
naive check: a two-sample Kolmogorov-Smirnov test on every numeric feature and a chi-square test on
every categorical one, on all the rows. Prints a table and writes bench/results/drift.json (a --quick
run writes only with --out).
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

import pandas as pd

from ml.contract import load_contract, model_frame
from ml.settings import load_settings
from ml.simulate.scenarios import parse_scenario
from ml.simulate.stream import SimConfig, Simulator
from results_file import peak_rss_mb, save_figures

DAY_MS, HOUR_MS = 86_400_000, 3_600_000
START_MS = 1_763_596_800_000  # 2025-11-20T00:00Z: fixed, so every run compares the same rows


def make_frames(rows: int, folder: Path) -> None:
    """Write `rows` reference rows (a day) and `rows` current rows (the next 6 hours, drifted) as Parquet."""
    contract = load_contract("machine_telemetry")
    drift = (parse_scenario("covariate@+1d", START_MS),)
    ref = Simulator(contract, SimConfig(devices=2000, rate=rows / 86_400, seed=11))
    cur = Simulator(contract, SimConfig(devices=2000, rate=rows / 21_600, seed=11, scenarios=drift))
    model_frame(contract, ref.frame(START_MS, START_MS + DAY_MS, with_label=False)).to_parquet(folder / "ref.parquet")
    end = START_MS + DAY_MS + 6 * HOUR_MS
    model_frame(contract, cur.frame(START_MS + DAY_MS, end, with_label=False)).to_parquet(folder / "cur.parquet")


def measure(mode: str, folder: Path) -> None:
    """In a child process: time one check on the saved frames; print seconds, peak RSS MB, drifted count."""
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
    return {"seconds": float(seconds), "rss": float(rss), "drifted": int(drifted), "rows": int(rows)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50,000 vs 50,000 rows, one run")
    parser.add_argument("--rows", type=int, help="rows on each side (default 1,000,000; 50,000 with --quick)")
    parser.add_argument("--runs", type=int, help="runs to take the median of (default 3; 1 with --quick)")
    parser.add_argument("--out", type=Path, help="where to write the figures (default bench/results/drift.json, "
                                                  "a --quick run writes only when given this)")
    parser.add_argument("--measure", choices=("check", "naive"), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        measure(args.measure, args.data)
        return 0
    rows = args.rows or (50_000 if args.quick else 1_000_000)
    runs = args.runs or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory() as tmp:
        make_frames(rows, Path(tmp))
        checks, naive = [], []
        for _ in range(runs):
            checks.append(run_child("check", Path(tmp)))
            naive.append(run_child("naive", Path(tmp)))
    seconds, base = statistics.median(c["seconds"] for c in checks), statistics.median(n["seconds"] for n in naive)
    figures = {
        "seconds": round(seconds, 2), "peak_rss_mb": round(max(c["rss"] for c in checks), 1),
        "rows_per_s": round(checks[0]["rows"] / seconds, 1), "rows": checks[0]["rows"],
        "drifted_features": checks[0]["drifted"], "baseline_seconds": round(base, 2),
        "baseline_peak_rss_mb": round(max(n["rss"] for n in naive), 1), "baseline_drifted_features": naive[0]["drifted"],
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cores": os.cpu_count(),
        "notes": (f"median of {runs}; {checks[0]['rows']:,} current rows (6 h, covariate drift) vs as many reference "
                  f"rows (1 day), 10 model columns; detect_drift with the default settings (each side sampled to "
                  f"{load_settings().drift_sample_rows:,} rows, Wasserstein/Jensen-Shannon, Evidently report built); "
                  "rows_per_s = current rows / seconds; peak RSS of the checking process, both frames included; "
                  "baseline = KS / chi-square p-value tests on all rows"),
    }
    print(f"{'':34}{'seconds':>10}{'peak MB':>10}{'rows/s':>14}{'drifted':>9}")
    print(f"{'drift check (sampled, Evidently)':34}{seconds:>10.2f}{figures['peak_rss_mb']:>10.0f}"
          f"{figures['rows_per_s']:>14,.0f}{figures['drifted_features']:>9}")
    print(f"{'baseline: KS/chi2 on all rows':34}{base:>10.2f}{figures['baseline_peak_rss_mb']:>10.0f}"
          f"{checks[0]['rows'] / base:>14,.0f}{figures['baseline_drifted_features']:>9}")
    met = seconds < 60 and figures["peak_rss_mb"] < 4096
    print(f"rows {rows:,} vs {rows:,}; targets < 60 s and < 4,096 MB: {'met' if met else 'MISSED'}")
    save_figures("drift", figures, args.quick, args.out)
    return 0 if met or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
