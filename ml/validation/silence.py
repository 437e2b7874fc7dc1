"""Is the stream silent? Read from the hours' manifests: a run of empty hours (nothing arrived at all).

A silent stream is not bad data, but a person should hear of it once: when the run of empty hours
reaches `hours` (the hour whose validation makes it so says "silent since ..."), and once more when an
hour holds events again after such a run ("back"). Both are decided from the lake alone, so a rerun or a
retry of the same hour gives the same answer and the alert's key (its first silent hour) stays the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from ml.lake import Lake
from ml.lake.layout import manifest_key
from ml.lake.window import HOUR, Window
from ml.validation.hour import EMPTY

SILENT, BACK = "silent", "back"


@dataclass(frozen=True)
class Silence:
    """A change the hour makes: the stream went `silent` (the run of empty hours reached the limit) or came
    `back` after one; `since` is the run's first empty hour and `hours` how many it has."""

    change: str
    since: datetime
    hours: int


def _empty(lake: Lake, topic_kind: str, start: datetime) -> bool | None:
    """True for an hour recorded as empty, False for one that holds rows, None for one not offloaded yet."""
    try:
        manifest = json.loads(lake.read_text(manifest_key(topic_kind, Window.hour(start))))
    except FileNotFoundError:
        return None
    return manifest.get("status") == EMPTY


def _empty_run_before(lake: Lake, topic_kind: str, start: datetime, most: int) -> int:
    """How many hours right before `start` are recorded as empty, counting back at most `most`."""
    count = 0
    while count < most and _empty(lake, topic_kind, start - (count + 1) * HOUR):
        count += 1
    return count


def silence_at(lake: Lake, topic_kind: str, window: Window, hours: int) -> Silence | None:
    """The change this validated hour makes to the stream's silence, or None. `hours` >= 1 empty hours in a
    row make a silence; the hour that completes the run reports it, and the first hour with events after a
    run of at least `hours` reports the stream back (the run is counted up to a week back)."""
    if hours < 1:
        raise ValueError(f"silence hours: {hours}; give a whole number >= 1 (CONTINUUM_SILENCE_HOURS)")
    here = _empty(lake, topic_kind, window.start)
    if here is None:
        return None
    if here:
        before = _empty_run_before(lake, topic_kind, window.start, hours)
        if before + 1 == hours:
            return Silence(SILENT, window.start - before * HOUR, hours)
        return None
    before = _empty_run_before(lake, topic_kind, window.start, 7 * 24)
    if before >= hours:
        return Silence(BACK, window.start - before * HOUR, before)
    return None
