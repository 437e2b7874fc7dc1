"""What time it is for the loop: the wall clock, or the event time a paced replay stands at.

A paced replay (`continuum-loop run`) plays recorded hours faster than real time, in real time's order:
before it runs the DAGs for the hour that ended at E, it has streamed the events up to E plus the
offload's lateness, and no further. Every decision those runs take (the window a retrain learns from,
when its labels count as matured, when a promotion took effect) must be the one a real-time run would
have taken at that moment, so they ask this module for "now", and the replay sets it in the lake
(`replay/clock.json`) for every process at once: the DAGs' tasks run in other processes.

In production there is no clock object and "now" is the wall clock. A clock the replay stopped
refreshing (it died) expires after `STALE_AFTER` of wall time, so a lake cannot be left frozen in the past.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

from ml.lake import Lake
from ml.lake.layout import replay_clock_key

log = logging.getLogger(__name__)
STALE_AFTER = timedelta(minutes=30)  # of wall time since the replay last wrote the clock


def wall() -> datetime:
    return datetime.now(timezone.utc)


def now(lake: Lake | None) -> datetime:
    """The paced replay's event time when one is running on this lake, else the wall clock."""
    if lake is None:
        return wall()
    clock = read_clock(lake)
    return clock if clock is not None else wall()


def read_clock(lake: Lake) -> datetime | None:
    """The replay's event time, or None (no replay, or its clock went stale: named in the log)."""
    key = replay_clock_key()
    try:
        data = json.loads(lake.read_text(key))
        at, written = datetime.fromisoformat(data["at"]), datetime.fromisoformat(data["written"])
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - an unreadable lake or clock: the wall clock, said in the log
        log.warning("ignoring an unreadable replay clock %s: %s", lake.url(key), exc)
        return None
    if wall() - written > STALE_AFTER:
        log.warning("ignoring the replay clock %s: not refreshed since %s (more than %s ago)", lake.url(key),
                    written.isoformat(timespec="seconds"), STALE_AFTER)
        return None
    return at


def set_clock(lake: Lake, at: datetime) -> None:
    """Stand the loop at event time `at` (refreshes the clock's wall-time stamp)."""
    body = {"at": at.astimezone(timezone.utc).isoformat(), "written": wall().isoformat()}
    lake.write_text(replay_clock_key(), json.dumps(body) + "\n")


def clear_clock(lake: Lake) -> None:
    """Back to the wall clock: the replay is over."""
    lake.delete(replay_clock_key())
