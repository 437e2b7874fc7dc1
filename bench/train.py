"""Benchmark: retraining on 1,000,000 rows of the default contract, the time-boxed search included.

    python bench/train.py            # 1,000,000 rows, median of 3 runs
    python bench/train.py --quick    # 50,000 rows, a 5 s search on 20,000 of them, one run (the tests' smoke check)

What is timed is what `train_candidate` spends on a training set once it is read: the shared feature
function on every row, the time split and its checks, the XGBoost search (the default time budget,
`CONTINUUM_RETRAIN_SEARCH_SECONDS`) and the holdout evaluation (metrics, latency, size). The rows come
from the simulator (one day of a fleet, with labels). The baseline, measured in the same run, is a
single XGBoost fit with the default parameters and no search. Writes bench/results/train.json (with
--quick only when --out is given).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from ml.contract import load_contract, model_frame
from ml.evaluate import evaluate
from ml.settings import load_settings
from ml.simulate.stream import SimConfig, Simulator
from ml.train import check_split, fit, time_split
from results_file import RESULTS as RESULTS_DIR, save_figures

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
    args = parser.parse_args(argv)
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
    save_figures("train", {
            "seconds": round(seconds, 2), "rows": len(df), "baseline_seconds": round(baseline["seconds"], 2),
            "trials": best["trials"], "roc_auc": round(best["roc_auc"], 4),
            "baseline_roc_auc": round(baseline["roc_auc"], 4),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cores": os.cpu_count(),
            "notes": f"features + split + search (budget {settings.retrain_search_seconds:g} s, max "
                     f"{settings.retrain_max_rounds} rounds) + holdout evaluation; median of {runs}; "
                     "baseline = one default fit, no search",
    }, args.quick, args.out)
    return 0 if seconds < 120 or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
