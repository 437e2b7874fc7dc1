"""How much of the loop to play (profiles), the event-time hours it plays (the timeline), and the
clock that stands every process of the stack at the event time the loop has reached."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

from ml import clock
from ml.lake.window import HOUR

RETENTION = timedelta(days=6)  # inside the topics' 7 days, by record timestamp
CLOCK_REFRESH_S = 60.0  # the loop rewrites its clock this often while it waits (it expires after ml.clock.STALE_AFTER)


class LoopError(RuntimeError):
    """A step of the loop failed; the message names the step and where to look."""


@dataclass(frozen=True)
class Profile:
    """How much of the loop to play: hours of history, hours after the drift's onset, and the fleet."""

    name: str
    history_hours: int
    drift_hours: int
    after_hours: int
    devices: int = 40
    rate: float = 0.5  # events per second of event time, the whole fleet
    seed: int = 7
    search_seconds: float = 8.0
    timeout_s: float = 600.0  # per waiting step

    @property
    def paced_hours(self) -> int:
        """The hours played one at a time after the first champion: the drifted ones and those after."""
        return self.drift_hours + self.after_hours

    @property
    def total_hours(self) -> int:
        return self.history_hours + self.paced_hours


PROFILES = {
    "demo": Profile("demo", history_hours=24, drift_hours=20, after_hours=3),
    "short": Profile("short", history_hours=24, drift_hours=14, after_hours=2, devices=30, rate=0.5, timeout_s=420.0),
}


@dataclass
class Timeline:
    """The event-time hours of the loop, ending an hour before the current one (closed and late-safe):
    `start` .. `onset` is the history the first champion learns; the drift begins at `onset`; the loop
    plays hour by hour up to `end`."""

    start: datetime
    onset: datetime
    end: datetime

    @classmethod
    def free_block(cls, profile: Profile, now: datetime, used: set[datetime]) -> "Timeline":
        """The latest run of hours, ending at least an hour before `now` (closed, lateness passed), that
        no earlier lake_offload run covered. Replaying hours Airflow already has runs for would need a
        backfill that replaces them, and on the standalone's SQLite that races the scheduler (it
        stopped it twice: `StaleDataError`, `ObjectDeletedError`)."""
        end = now.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0) - HOUR
        oldest = now - RETENTION + profile.total_hours * HOUR
        while end >= oldest:
            hours = [end - (i + 1) * HOUR for i in range(profile.total_hours)]
            clash = [h for h in hours if h in used]
            if not clash:
                return cls.ending_at(profile, end)
            end = min(clash)  # the block must end at or before the earliest clashing hour
        raise LoopError(f"no {profile.total_hours} hours in a row within Kafka's retention are free of earlier "
                        f"lake_offload runs; stop the stack and remove .local (`make down && rm -rf .local`)")

    @classmethod
    def ending_at(cls, profile: Profile, end: datetime) -> "Timeline":
        start = end - profile.total_hours * HOUR
        return cls(start, start + profile.history_hours * HOUR, end)

    def hours(self, a: datetime, b: datetime) -> list[datetime]:
        return [a + i * HOUR for i in range(int((b - a) / HOUR))]

    def to_dict(self) -> dict:
        return {k: v.isoformat() for k, v in asdict(self).items()}

    def describe(self) -> str:
        """`2026-12-01 01:00Z .. 2026-12-02 17:00Z`: both ends with their dates."""
        return f"{self.start:%Y-%m-%d %H:%M}Z .. {self.end:%Y-%m-%d %H:%M}Z"


class LoopClock:
    """The loop's clock in the lake (`ml.clock`), which every process of the stack reads as its now."""

    def __init__(self, lake) -> None:
        self.lake = lake
        self._at: datetime | None = None
        self._written = 0.0

    def set(self, at: datetime) -> None:
        clock.set_clock(self.lake, at)
        self._at, self._written = at, time.monotonic()

    def keep(self) -> None:
        """Rewrite the clock now and then while waiting, so it does not expire under a long run."""
        if self._at is not None and time.monotonic() - self._written > CLOCK_REFRESH_S:
            self.set(self._at)

    def clear(self) -> None:
        """Back to the wall clock."""
        clock.clear_clock(self.lake)
