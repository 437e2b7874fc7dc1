"""Which drift shares the policy sees: recorded windows, windows measured late, gaps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ml.monitor.run import drift_chain, pending_until, regime_since, run_id_for, whole_hour
from plugins.tasks.monitor import retrain_request

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


def test_a_retrain_learns_from_where_the_change_was_first_seen():
    # three drifted windows ending 12:00, 13:00, 14:00: the first one's last hour is 11:00
    assert regime_since("data", END, [0.5, 0.6, 0.7], None) == (END - 3 * H).isoformat()
    # the live window whose accuracy fell
    live = {"start": (END - 12 * H).isoformat(), "end": (END - 6 * H).isoformat()}
    assert regime_since("metric", END, [], live) == (END - 12 * H).isoformat()
    assert regime_since("schedule", END, [0.1], live) is None


def test_the_request_carries_the_earliest_regime_of_its_decisions():
    def outcome(hours_back: int, retrain: bool, since: str | None) -> dict:
        end = (END - hours_back * H).isoformat()
        return {"run_id": run_id_for(END - hours_back * H), "window": {"end": end}, "kind": "data",
                "retrain": retrain, "reason": "drift", "champion": "1", "links": {}, "regime_since": since}

    assert retrain_request([outcome(2, False, None)]) is None
    request = retrain_request([outcome(8, True, "2026-11-22T03:00:00+00:00"), outcome(2, False, None),
                               outcome(1, True, "2026-11-22T09:00:00+00:00")])
    assert request["regime_since"] == "2026-11-22T03:00:00+00:00" and request["window_end"] == (END - H).isoformat()
    assert request["champion"] == "1" and len(request["decisions"]) == 2
    assert retrain_request([outcome(1, True, None)])["regime_since"] is None


def test_a_retrain_for_the_champion_is_pending_until_its_regime_hours_and_their_labels_are_due():
    delay = timedelta(hours=6)
    asked = {"retrain": True, "champion": {"version": "1"}, "regime_since": (END - 3 * H).isoformat()}
    quiet = {"retrain": False, "champion": {"version": "1"}}
    # the regime's 6 hours end at 17:00, their labels are due by 23:00, offloaded within the next hour
    assert pending_until([quiet, asked], "1", 6, delay) == END + 10 * H
    assert pending_until([quiet, asked], "2", 6, delay) is None  # a new champion answered it
    assert pending_until([quiet, asked], "1", 0, delay) is None  # no waiting by policy
    assert pending_until([{**asked, "regime_since": None}], "1", 6, delay) is None  # a calendar retrain
    assert pending_until([quiet], "1", 6, delay) is None
