"""When a run of empty hours is a silent stream, and when it is back: read from the hours' manifests."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from ml.lake import Lake
from ml.lake.layout import manifest_key
from ml.lake.window import Window
from ml.validation import EMPTY, INVALID, VALID, Silence, silence_at

T0 = datetime(2026, 11, 22, 0, tzinfo=timezone.utc)


def hours(lake: Lake, statuses: str) -> list[Window]:
    """One manifest an hour from T0: 'e' empty, 'v' valid, 'i' invalid, '.' not offloaded."""
    windows = []
    for i, s in enumerate(statuses):
        window = Window.hour(T0 + timedelta(hours=i))
        windows.append(window)
        if s != ".":
            status = {"e": EMPTY, "v": VALID, "i": INVALID}[s]
            lake.write_text(manifest_key("telemetry", window), json.dumps({"status": status}))
    return windows


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_the_hour_that_completes_the_run_reports_it_once(tmp_path, limit):
    lake = Lake(str(tmp_path))
    windows = hours(lake, "v" + "e" * 5)
    changes = [silence_at(lake, "telemetry", w, limit) for w in windows]
    expected = [None] * 6
    expected[limit] = Silence("silent", windows[1].start, limit)
    assert changes == expected


def test_the_first_hour_with_events_after_a_silence_reports_it_back_with_its_length(tmp_path):
    lake = Lake(str(tmp_path))
    windows = hours(lake, "veeevev")
    assert silence_at(lake, "telemetry", windows[4], 2) == Silence("back", windows[1].start, 3)
    assert silence_at(lake, "telemetry", windows[4], 3) == Silence("back", windows[1].start, 3)
    assert silence_at(lake, "telemetry", windows[4], 4) is None, "three empty hours are no silence at 4"
    assert silence_at(lake, "telemetry", windows[6], 1) == Silence("back", windows[5].start, 1)
    assert silence_at(lake, "telemetry", windows[6], 2) is None


def test_an_invalid_or_missing_hour_breaks_the_run_and_an_unoffloaded_hour_says_nothing(tmp_path):
    lake = Lake(str(tmp_path))
    windows = hours(lake, "eie.e.")
    assert silence_at(lake, "telemetry", windows[2], 2) is None, "an invalid hour had data: it breaks the run"
    assert silence_at(lake, "telemetry", windows[4], 2) is None, "an hour not offloaded is not known to be empty"
    assert silence_at(lake, "telemetry", windows[5], 1) is None
    with pytest.raises(ValueError, match="CONTINUUM_SILENCE_HOURS"):
        silence_at(lake, "telemetry", windows[0], 0)
