"""The loop's clock: the wall clock, or the event time a paced replay stands at, while it is fresh."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from ml import clock
from ml.lake import Lake
from ml.lake.layout import replay_clock_key

PAST = datetime(2026, 11, 22, 13, 10, tzinfo=timezone.utc)


def test_without_a_replay_now_is_the_wall_clock(tmp_path):
    before = datetime.now(timezone.utc)
    assert before <= clock.now(Lake(str(tmp_path))) <= datetime.now(timezone.utc)
    assert before <= clock.now(None) <= datetime.now(timezone.utc)


def test_a_replay_sets_now_for_every_reader_of_the_lake_and_clearing_gives_the_wall_clock_back(tmp_path):
    writer, reader = Lake(str(tmp_path)), Lake(str(tmp_path))
    clock.set_clock(writer, PAST)
    assert clock.now(reader) == PAST
    clock.clear_clock(writer)
    assert clock.now(reader) > PAST + timedelta(days=1)


def test_a_clock_not_refreshed_for_longer_than_stale_after_is_ignored(tmp_path):
    lake = Lake(str(tmp_path))

    def written(ago: timedelta) -> None:
        stamp = datetime.now(timezone.utc) - ago
        lake.write_text(replay_clock_key(), json.dumps({"at": PAST.isoformat(), "written": stamp.isoformat()}))

    written(clock.STALE_AFTER - timedelta(seconds=30))
    assert clock.now(lake) == PAST
    written(clock.STALE_AFTER + timedelta(seconds=1))
    assert clock.now(lake) > PAST + timedelta(days=1)


def test_an_unreadable_clock_is_ignored(tmp_path):
    lake = Lake(str(tmp_path))
    lake.write_text(replay_clock_key(), "{not json")
    assert clock.now(lake) > PAST + timedelta(days=1)


def test_a_lake_that_cannot_be_read_gives_the_wall_clock(tmp_path):
    """A promotion must not fail on the clock: the lake's own failure shows where it is written."""
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the lake's folder should be")
    assert clock.now(Lake(str(blocked))) > PAST + timedelta(days=1)
