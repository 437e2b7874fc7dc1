"""`continuum-loop run --replay`: the arguments that play a recorded file through the loop, checked.

The DAGs and the sidecar run under the stack's settings, so the file's contract must be the stack's
(`CONTINUUM_CONTRACT`) and its model the stack's (`CONTINUUM_MODEL_NAME`): `make replay` starts them so.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ml.contract import load_contract
from ml.replay import ReplayError, ReplayOptions
from ml.replay.options import parse_instant
from tooling.loop.timeline import RETENTION, Profile

# a file with only an order is given times from here, then moved (by whole days) to where the loop plays it
PROVISIONAL_START = datetime(2000, 1, 1, tzinfo=timezone.utc)


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("replaying a recorded file (instead of the simulator)")
    group.add_argument("--replay", metavar="FILE", help="a CSV or Parquet file, or pkg:<package>/<path> inside one")
    group.add_argument("--contract", help="the file's contract (a YAML path or a packaged name): the stack's own")
    group.add_argument("--time-column", help="the file's event-time column")
    group.add_argument("--rows-per-hour", type=int, help="for a file with only an order: rows per event-time hour")
    group.add_argument("--label-column", help="the file's 0/1 label column (default: the contract's label field)")
    group.add_argument("--label-delay-minutes", type=float,
                       help="outcome time = event time + this (default: the contract's expected delay)")
    group.add_argument("--entity-column", help="the file's device/entity column (default: one entity)")
    group.add_argument("--names", help="column names, comma-separated, for a CSV file without a header row")
    group.add_argument("--from", dest="from_time", help="keep events at or after this time (the file's own times), "
                                                       "or row:N with --rows-per-hour")
    group.add_argument("--to", dest="to_time", help="keep events before this time (or row:N with --rows-per-hour)")
    group.add_argument("--history-hours", type=int, default=24,
                       help="the first hours the first champion learns from (default 24)")
    group.add_argument("--change-at", help="a known change, to measure from: a time, or row:N for a file "
                                          "with --rows-per-hour")


def replay_play(args, settings, api):
    """(the profile, the Play) of `--replay`; SystemExit(2) naming the argument for a bad one."""
    from plugins.dag_ids import LAKE_OFFLOAD
    from tooling.loop.stream import file_play

    if not args.contract:
        raise SystemExit("continuum-loop: --replay needs --contract, the file's contract (a YAML path)")
    contract = load_contract(args.contract)
    stack = load_contract(settings.contract)
    if contract.schema_hash() != stack.schema_hash() or contract.name != stack.name:
        raise SystemExit(f"continuum-loop: --contract {args.contract} is {contract.name!r}, but the stack's DAGs and "
                         f"sidecar run contract {stack.name!r} (CONTINUUM_CONTRACT={settings.contract}); start "
                         f"them with the file's contract: make replay FILE=... CONTRACT={args.contract}")
    if args.history_hours < 1:
        raise SystemExit(f"continuum-loop: --history-hours {args.history_hours}: must be at least 1")
    delay = None if args.label_delay_minutes is None else timedelta(minutes=args.label_delay_minutes)
    try:
        options = ReplayOptions(time_column=args.time_column, rows_per_hour=args.rows_per_hour,
                                start=PROVISIONAL_START if args.rows_per_hour else None,
                                label_column=args.label_column, label_delay=delay, entity_column=args.entity_column,
                                names=tuple(n.strip() for n in args.names.split(",")) if args.names else None)
        options = ReplayOptions(**{**options.__dict__, "from_time": _at(args.from_time, "--from", options),
                                   "to_time": _at(args.to_time, "--to", options)}).checked()
        change_at = _at(args.change_at, "--change-at", options)
    except ReplayError as exc:
        raise SystemExit(f"continuum-loop: {exc}") from None
    now = datetime.now(timezone.utc)
    play = file_play(args.replay, contract, options, args.history_hours, change_at, now,
                     api.covered_hours(LAKE_OFFLOAD, now - RETENTION))
    hours = len(play.timeline.hours(play.timeline.start, play.timeline.end))
    profile = Profile(f"replay of {Path(args.replay).name}", history_hours=args.history_hours,
                      drift_hours=hours - args.history_hours, after_hours=0)
    return profile, play


def _at(value: str | None, option: str, options: ReplayOptions) -> datetime | None:
    """A time given as ISO-8601 text, or as row:N (the event time of row N) for a file with rows per hour."""
    if value is None:
        return None
    if value.startswith("row:"):
        if options.rows_per_hour is None:
            raise ReplayError(f"{option} row:N: only with --rows-per-hour (otherwise give a time)")
        try:
            row = int(value[4:])
        except ValueError:
            raise ReplayError(f"{option} {value}: N must be a row number, e.g. row:12000") from None
        if row < 0:
            raise ReplayError(f"{option} {value}: N must be a row number >= 0")
        return PROVISIONAL_START + timedelta(seconds=row * 3600 / options.rows_per_hour)
    return parse_instant(value, option)

