"""The champion at a time, from the audit trail, and the served predictions it makes stale."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd

from ml.registry.history import ChampionTimeline, stale_predictions

T0 = datetime(2026, 11, 22, 10, 10, tzinfo=timezone.utc)


def move(to: str, at: datetime, model: str = "m", alias: str = "champion") -> dict:
    return {"model": model, "alias": alias, "to": to, "at": at.isoformat()}


def timeline() -> ChampionTimeline:
    records = [move("2", T0 + timedelta(hours=5)), move("1", T0), move("9", T0, model="other"),
               move("3", T0 + timedelta(hours=8), alias="previous")]
    return ChampionTimeline.from_records(records, "m")


def test_the_champion_at_a_time_is_the_latest_move_at_or_before_it():
    t = timeline()
    assert t.moves == ((T0, "1"), (T0 + timedelta(hours=5), "2"))  # other models' and aliases' records left out
    assert t.at(T0 - timedelta(microseconds=1)) is None
    assert t.at(T0) == "1"  # a move takes effect at its own time
    assert t.at(T0 + timedelta(hours=5) - timedelta(seconds=1)) == "1"
    assert t.at(T0 + timedelta(hours=5)) == "2"


def test_predictions_scored_by_a_version_not_champion_at_their_event_time_are_stale():
    swap = T0 + timedelta(hours=5)
    scored = pd.DataFrame({
        "event_id": ["before-first", "v1-ok", "v1-edge", "v1-late", "v2-ok", "v2-early"],
        "event_time": pd.to_datetime([T0 - timedelta(minutes=1), T0, swap - timedelta(seconds=1), swap,
                                      swap, swap - timedelta(seconds=1)], utc=True),
        "model_version": ["1", "1", "1", "1", "2", "2"]})
    stale = stale_predictions(scored, timeline(), "event_time")
    assert set(stale["event_id"]) == {"before-first", "v1-late", "v2-early"}
    assert dict(zip(stale["event_id"], stale["champion_at_event_time"])) == {
        "before-first": None, "v1-late": "2", "v2-early": "1"}


def test_with_no_move_every_served_prediction_is_stale():
    scored = pd.DataFrame({"event_id": ["a"], "event_time": pd.to_datetime([T0], utc=True), "model_version": ["1"]})
    assert list(stale_predictions(scored, ChampionTimeline("m", ()), "event_time")["event_id"]) == ["a"]
