"""Benchmark: retraining on 1,000,000 rows of the default contract, the time-boxed search included; and
10,000,000 rows read from the lake along each path past one frame.

    python bench/train.py            # 1,000,000 rows, median of 3 runs; then 10,000,000 rows from a lake
    python bench/train.py --quick    # 50,000 rows, a 5 s search on 20,000 of them, one run; 20,000 over a day of lake hours

What is timed is what `train_candidate` spends on a training set once it is read: the shared feature
function on every row, the time split and its checks, the XGBoost search (the default time budget,
`CONTINUUM_RETRAIN_SEARCH_SECONDS`) and the holdout evaluation (metrics, latency, size). The rows come
from the simulator (one day of a fleet, with labels). The baseline, measured in the same run, is a
single XGBoost fit with the default parameters and no search.

Then a week of hours holding `--lake-rows` events is written to a local lake (`bench/train_lake.py`),
and one retrain's `_fit` (read, split, search, final fit, holdout figures) is timed along each path, each
in a process of its own for its peak RSS: the data iterator (`stream`), external memory (`extmem`) and a
two-worker Dask cluster (`dask`) on every hour, and the window read into one frame (`memory`) on the
first tenth of the hours as the baseline. Writes bench/results/train.json (with --quick only when --out
is given).
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

from ml.contract import load_contract, model_frame
from ml.evaluate import evaluate
from ml.settings import load_settings
from ml.simulate.stream import SimConfig, Simulator
from ml.train import check_split, fit, time_split
from results_file import RESULTS as RESULTS_DIR, save_figures
from train_lake import hours_for, measure, run_path, write_lake

RESULTS = RESULTS_DIR / "train.json"
DAY_MS = 86_400_000


def rows_frame(contract, rows: int):
    """`rows` labelled events spread over one day, sorted by event time."""
    start = (time.time_ns() // 1_000_000 - 2 * DAY_MS) // DAY_MS * DAY_MS
    sim = Simulator(contract, SimConfig(devices=200, rate=rows / 86_400, seed=7))
    return sim.frame(start, start + DAY_MS, with_label=True)


def train_once(contract, df, settings, budget: float | None) -> dict:
    """Features, split, fit (the search when `budget` is None, else one default trial) and evaluation."""
    label = contract.label.field
    t0 = time.perf_counter()
    split = time_split(df, settings.retrain_holdout_fraction, settings.retrain_validation_fraction)
    check_split(split, label, settings.retrain_min_rows, settings.retrain_min_per_class)
    X_train, X_valid = model_frame(contract, split.train), model_frame(contract, split.valid)
    if budget is None:  # the search, as train_candidate runs it
        result = fit(X_train, split.train[label], X_valid, split.valid[label], settings.retrain_search_seconds,
                     settings.retrain_max_rounds, search_rows=settings.retrain_search_rows)
    else:  # the baseline: one fit of the default parameters on every row
        result = fit(X_train, split.train[label], X_valid, split.valid[label], 0.0, settings.retrain_max_rounds,
                     search_rows=len(X_train) + 1)
    metrics = evaluate(result.booster, contract, split.holdout, settings.serving_threshold)
    trials_s = sum(t["seconds"] for t in result.trials)
    return {"seconds": time.perf_counter() - t0, "trials": len(result.trials), "roc_auc": metrics["holdout_roc_auc"],
            "rounds": result.best_iteration + 1, "trials_s": trials_s, "final_s": result.seconds - trials_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50,000 rows, one run")
    parser.add_argument("--rows", type=int, help="rows to train on (default 1,000,000; 50,000 with --quick)")
    parser.add_argument("--runs", type=int, help="runs to take the median of (default 3; 1 with --quick)")
    parser.add_argument("--out", type=Path, help=f"where to write the figures (default {RESULTS}, not with --quick)")
    parser.add_argument("--lake-rows", type=int, help="rows of the lake's week (default 10,000,000; 20,000 over a day with --quick)")
    parser.add_argument("--measure", choices=("memory", "stream", "extmem", "dask"), help=argparse.SUPPRESS)
    parser.add_argument("--lake", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--start", type=datetime.fromisoformat, help=argparse.SUPPRESS)
    parser.add_argument("--end", type=datetime.fromisoformat, help=argparse.SUPPRESS)
    parser.add_argument("--search-seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        measure(args.measure, args.lake, args.start, args.end, args.search_seconds)
        return 0
    rows = args.rows or (50_000 if args.quick else 1_000_000)
    runs = args.runs or (1 if args.quick else 3)
    settings, contract = load_settings(), load_contract("machine_telemetry")
    if args.quick:  # a smoke check: a short search on a small sample
        settings = settings.model_copy(update={"retrain_search_seconds": 5.0, "retrain_search_rows": 20_000})
    df = rows_frame(contract, rows)
    baseline = train_once(contract, df, settings, budget=0.0)  # the default trial only
    searched = [train_once(contract, df, settings, budget=None) for _ in range(runs)]
    seconds = statistics.median(r["seconds"] for r in searched)
    best = searched[-1]
    head = ("seconds", "in trials", "final fit", "trials", "rounds", "roc_auc")
    print(f"{'':24}" + "".join(f"{h:>10}" for h in head))
    for label, r, secs in (("baseline: one fit", baseline, baseline["seconds"]),
                           (f"search (median of {runs})", best, seconds)):
        print(f"{label:24}{secs:>10.1f}{r['trials_s']:>10.1f}{r['final_s']:>10.1f}{r['trials']:>10}{r['rounds']:>10}"
              f"{r['roc_auc']:>10.4f}")
    print(f"rows {len(df):,}, search budget {settings.retrain_search_seconds:g} s, target < 120 s: "
          f"{'met' if seconds < 120 else 'MISSED'}")
    lake = from_lake(args.lake_rows or (20_000 if args.quick else 10_000_000),
                     1.0 if args.quick else settings.retrain_search_seconds,
                     ("stream",) if args.quick else ("stream", "extmem", "dask"), days=1 if args.quick else 7)
    big_met = lake["rows_10m_peak_rss_mb"] < 4096
    save_figures("train", {**lake,
            "seconds": round(seconds, 2), "rows": len(df), "baseline_seconds": round(baseline["seconds"], 2),
            "trials": best["trials"], "roc_auc": round(best["roc_auc"], 4),
            "baseline_roc_auc": round(baseline["roc_auc"], 4),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cores": os.cpu_count(),
            "notes": f"features + split + search (budget {settings.retrain_search_seconds:g} s, max "
                     f"{settings.retrain_max_rounds} rounds) + holdout evaluation; median of {runs}; "
                     "baseline = one default fit, no search; rows_10m_*: a retrain's _fit along the data-iterator "
                     "path on a week of lake hours (read, spool, split, search, final fit, holdout figures), each path "
                     "in its own process (peak RSS its own; dask workers apart), the in-memory path on the first tenth "
                     "of the hours (rows_1m_*) in the same run; dask_auc_delta = holdout ROC AUC of the Dask path minus "
                     "the iterator path's, same window and holdout",
    }, args.quick, args.out)
    return 0 if (seconds < 120 and big_met) or args.quick else 1


def from_lake(rows: int, search_seconds: float, paths: tuple[str, ...], days: int) -> dict:
    """Each path on `days` days of lake hours holding `rows` rows, the in-memory baseline on their first
    tenth; the figures."""
    with tempfile.TemporaryDirectory(prefix="bench-train-lake-") as tmp:
        t0 = time.perf_counter()
        start, end = write_lake(Path(tmp), rows, days)
        print(f"lake: {rows:,} rows over {end - start} written in {time.perf_counter() - t0:.0f} s")
        base_end = start + timedelta(hours=hours_for(rows // 10, rows, days))
        runs = {"memory": run_path("memory", Path(tmp), start, base_end, search_seconds)}
        runs.update({path: run_path(path, Path(tmp), start, end, search_seconds) for path in paths})
    print(f"{'path':24}{'rows':>12}{'seconds':>10}{'peak MB':>10}{'roc_auc':>10}{'rounds':>8}")
    for path, r in runs.items():
        extra = f"  workers {', '.join(f'{w:.0f}' for w in r['workers_rss'])} MB" if r["workers_rss"] else ""
        print(f"{path:24}{r['rows']:>12,}{r['seconds']:>10.1f}{r['rss']:>10.0f}{r['auc']:>10.4f}{r['rounds']:>8}{extra}")
    big = runs["stream"]
    print(f"{big['rows']:,} labelled rows streamed: target < 4,096 MB peak RSS: {'met' if big['rss'] < 4096 else 'MISSED'}")
    figures = {"rows_10m": big["rows"], "rows_10m_seconds": round(big["seconds"], 1),
               "rows_10m_peak_rss_mb": round(big["rss"], 1),
               "rows_1m_memory_seconds": round(runs["memory"]["seconds"], 1),
               "rows_1m_memory_peak_rss_mb": round(runs["memory"]["rss"], 1), "rows_1m": runs["memory"]["rows"],
               "paths": {p: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for p, r in runs.items()}}
    if "dask" in runs:
        figures["dask_auc_delta"] = round(runs["dask"]["auc"] - big["auc"], 4)
    return figures


if __name__ == "__main__":
    sys.exit(main())
