"""What a monitoring window's drift is compared with: the champion's reference at the same hours of the day."""

from __future__ import annotations

import pandas as pd

from ml.contract import load_contract
from ml.monitor.run import same_hours_of_day

CONTRACT = load_contract("machine_telemetry")
DAY = "2026-11-22"


def rows(hours: list[int], per_hour: int, day: str = DAY) -> pd.DataFrame:
    times = [f"{day}T{h:02d}:{m % 60:02d}:00.000Z" for h in hours for m in range(per_hour)]
    return pd.DataFrame({CONTRACT.event_time: times, "torque_nm": range(len(times))})


def window(hours: list[int]) -> list[str]:
    return [f"{DAY}T{h:02d}:00:00+00:00" for h in hours]


def test_a_window_is_compared_with_the_same_hours_of_a_whole_day_reference():
    reference, current = rows(list(range(24)), 100), rows([18, 19, 20], 50)
    ref, cur, note = same_hours_of_day(CONTRACT, reference, current, window([18, 19, 20]), 200)
    assert len(ref) == 300 and set(pd.to_datetime(ref[CONTRACT.event_time]).dt.hour) == {18, 19, 20}
    assert cur is current and note == {"rows": 300, "same_hours_of_day": True}


def test_a_reference_of_part_of_the_day_compares_only_the_hours_it_covers():
    """A champion retrained on a regime learned from 03:00-14:00: a 12:00-18:00 window is compared at 12-14."""
    reference, current = rows(list(range(3, 15)), 100), rows(list(range(12, 18)), 50)
    ref, cur, note = same_hours_of_day(CONTRACT, reference, current, window(list(range(12, 18))), 200)
    assert set(pd.to_datetime(ref[CONTRACT.event_time]).dt.hour) == {12, 13, 14}
    assert set(pd.to_datetime(cur[CONTRACT.event_time]).dt.hour) == {12, 13, 14} and len(cur) == 150
    assert note["hours_compared"] == [12, 13, 14]


def test_hours_the_reference_never_saw_are_not_judged_rather_than_compared_with_other_hours():
    reference, current = rows(list(range(3, 15)), 100), rows([18, 19, 20], 50)
    ref, cur, note = same_hours_of_day(CONTRACT, reference, current, window([18, 19, 20]), 200)
    assert ref is None and note["rows"] == 0
    assert "covers hours 03-14 UTC" in note["not_judged"] and "18-20" in note["not_judged"]


def test_a_whole_day_reference_with_too_few_rows_at_these_hours_is_used_whole():
    reference = pd.concat([rows(list(range(24)), 2), rows([5], 500)], ignore_index=True)
    current = rows([18, 19], 50)
    ref, _, note = same_hours_of_day(CONTRACT, reference, current, window([18, 19]), 200)
    assert ref is reference and note == {"rows": len(reference), "same_hours_of_day": False}
