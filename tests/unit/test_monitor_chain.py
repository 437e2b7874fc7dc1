"""Which drift shares the policy sees: recorded windows, windows measured late, gaps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ml.monitor.run import drift_chain, run_id_for, whole_hour

END = datetime(2026, 11, 22, 14, tzinfo=timezone.utc)
H = timedelta(hours=1)


def record(end: datetime, share: float | None) -> dict:
    return {"evidence": {"now": end.isoformat()}, "drift": None if share is None else {"drift_share": share}}


def never(when):  # a window that must not be measured
    raise AssertionError(f"measured {when}")


def test_recorded_windows_are_read_oldest_first():
    history = [record(END - H, 0.5), record(END - 2 * H, 0.4), record(END - 3 * H, 0.9)]
    assert drift_chain(history, END, 2, never) == [0.4, 0.5]


def test_a_window_not_recorded_yet_is_measured_and_a_gap_stops_the_chain():
    measured = []

    def measure(when):
        measured.append(when)
        return 0.6 if when == END - H else None

    assert drift_chain([record(END - 3 * H, 0.9)], END, 3, measure) == [0.6]
    assert measured == [END - H, END - 2 * H]


def test_windows_judged_against_another_champion_are_measured_again():
    history = [{**record(END - H, 0.9), "champion": {"version": "1"}}, {**record(END - 2 * H, 0.8), "champion": {"version": "2"}}]
    assert drift_chain(history, END, 2, lambda when: 0.1, version="2") == [0.8, 0.1]


def test_a_window_without_drift_figures_breaks_the_run():
    assert drift_chain([record(END - H, None), record(END - 2 * H, 0.8)], END, 2, never) == []


def test_run_ids_and_hours():
    assert run_id_for(END) == "monitor-20261122T1400"
    for bad in (datetime(2026, 11, 22, 14), END + timedelta(minutes=5)):
        try:
            whole_hour(bad)
        except ValueError as exc:
            assert "2026-11-22T14" in str(exc) or "time zone" in str(exc)
        else:
            raise AssertionError(f"{bad} accepted")
