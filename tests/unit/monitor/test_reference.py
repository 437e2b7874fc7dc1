"""The champion's reference per hour of the day: which hours it covers, which served hours it learns, where
each came from, how many rows, and when a window cannot be judged for drift."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pandas as pd

from ml.contract import load_contract
from ml.lake import Lake
from ml.lake.layout import reference_index_key
from ml.monitor.reference import TRAINING, Reference, same_hours_of_day, save_reference
from ml.monitor.run import drift_chain

CONTRACT = load_contract("machine_telemetry")
DAY = datetime(2026, 11, 22, tzinfo=timezone.utc)
H = timedelta(hours=1)


def rows(start: datetime, n: int, value: float = 0.0) -> pd.DataFrame:
    """`n` rows spread over the hour starting at `start`."""
    times = [start + timedelta(seconds=3600 * i / n) for i in range(n)]
    return pd.DataFrame({CONTRACT.event_time: pd.to_datetime(times, utc=True), "x": [value + i for i in range(n)]})


def training(hours=range(10, 16), per_hour=100) -> Reference:
    return Reference.from_training(CONTRACT, pd.concat([rows(DAY + h * H, per_hour) for h in hours], ignore_index=True))


def test_the_training_reference_gives_the_hours_it_covers_and_its_size_per_hour():
    reference = training()
    assert reference.sources == {h: TRAINING for h in range(10, 16)}
    assert reference.per_hour == 100 and reference.missing(range(8, 12)) == [8, 9]


def test_served_hours_fill_only_the_hours_of_the_day_missing_sampled_to_the_size_per_hour():
    reference = training()
    served = pd.concat([rows(DAY + 24 * H + h * H, 700, value=1000.0) for h in (6, 7, 10)] +
                       [rows(DAY + 24 * H + 8 * H, 40)], ignore_index=True)
    hours = [(DAY + 24 * H + h * H).isoformat() for h in (6, 7, 8, 10)]
    merged, added = reference.with_served(served, hours)
    assert added == ["2026-11-23T06", "2026-11-23T07", "2026-11-23T08"]  # 10:00 comes from training
    assert merged.record() == {"06": "2026-11-23T06", "07": "2026-11-23T07", "08": "2026-11-23T08",
                               **{f"{h}": TRAINING for h in range(10, 16)}}
    sizes = merged.rows(range(24)).groupby(pd.to_datetime(merged.frame[CONTRACT.event_time]).dt.hour).size()
    assert sizes.to_dict() == {6: 100, 7: 100, 8: 40, **{h: 100 for h in range(10, 16)}}
    assert set(merged.rows([10])["x"]) == set(reference.rows([10])["x"])  # the training rows stay
    assert reference.missing([6]) == [6]  # pure: the reference it started from is unchanged
    again, none = merged.with_served(rows(DAY + 48 * H + 6 * H, 300), [(DAY + 48 * H + 6 * H).isoformat()])
    assert none == [] and again.record()["06"] == "2026-11-23T06"  # an hour of the day is learned once


def test_the_earliest_served_hour_of_a_day_wins_and_an_hour_without_rows_adds_nothing():
    served = pd.concat([rows(DAY + 30 * H, 50), rows(DAY + 54 * H, 50)], ignore_index=True)
    merged, added = training().with_served(served, [(DAY + 54 * H).isoformat(), (DAY + 30 * H).isoformat(),
                                                    (DAY + 31 * H).isoformat()])
    assert added == ["2026-11-23T06"] and merged.record()["06"] == "2026-11-23T06"


def test_a_window_with_one_hour_of_the_day_not_covered_is_not_judged():
    reference = training()
    covered = [(DAY + h * H).isoformat() for h in range(10, 16)]
    frame, note = same_hours_of_day(reference, covered, min_rows=600)
    assert frame is not None and len(frame) == 600, note
    frame, note = same_hours_of_day(reference, covered[1:] + [(DAY + 16 * H).isoformat()], min_rows=1)
    assert frame is None and note == "no reference for hours of day 16 yet"
    frame, note = same_hours_of_day(reference, covered, min_rows=601)  # covered, but one row short
    assert frame is None and "600 rows" in note


def test_the_served_reference_is_written_under_a_new_name_then_named_by_its_record(tmp_path):
    lake = Lake(str(tmp_path))
    merged, _ = training().with_served(rows(DAY + 30 * H, 300), [(DAY + 30 * H).isoformat()])
    first = json.loads(lake.read_text(save_reference(lake, "m", "3", "run-1", merged)))
    second = json.loads(lake.read_text(save_reference(lake, "m", "3", "run-1", merged)))
    assert first["rows"] != second["rows"] and lake.exists(first["rows"]) and lake.exists(second["rows"])
    assert second["hours"]["06"] == "2026-11-23T06" and second["hours"]["10"] == TRAINING
    assert second["rows_per_hour"] == 100 and second["run_id"] == "run-1"
    assert reference_index_key("m", "3") == "registry/references/m/3/reference.json"
    assert pd.read_parquet(lake.url(second["rows"]))["x"].size == 100


def test_a_window_not_judged_for_drift_breaks_the_run_of_drifted_windows():
    end = DAY + 14 * H

    def record(back: int, drift: dict) -> dict:
        return {"evidence": {"now": (end - back * H).isoformat()}, "drift": drift}

    history = [record(1, {"judged": False, "reason": "no reference for hours of day 12 yet"}),
               record(2, {"judged": True, "drift_share": 0.9})]
    assert drift_chain(history, end, 2, lambda when: 0.9) == []
