"""How a recorded file becomes a stream: where event time comes from, the label, its delay, the slice.

A file either has an event-time column (`time_column`) or only an order, in which case row i is
placed at `start + i / rows_per_hour` hours, so every hour holds `rows_per_hour` rows spread evenly
across it. A bad combination of options fails at once with a `ReplayError` naming the option and
the fix, before any row is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ml.contract.records import event_time_utc

HOUR = timedelta(hours=1)


class ReplayError(ValueError):
    """The options or the file cannot make a stream; the message names the option (or column) and the fix."""


@dataclass(frozen=True)
class ReplayOptions:
    """Options of one replay; times may be aware datetimes or ISO-8601 text (without a zone: UTC).

    time_column:    the file's event-time column, parsed to UTC (or give rows_per_hour and start)
    rows_per_hour:  for a file with only an order: rows per event-time hour, starting at `start`
    start:          the first row's event time with rows_per_hour; must be on the hour
    label_column:   the file's 0/1 label column (default: the contract's label field)
    label_delay:    outcome time = event time + this (default: the contract's expected label delay)
    entity_column:  the file's device/entity column; without one every event has entity `entity`
    entity:         the entity of every event when there is no entity_column (default: the file's name)
    from_time, to_time: keep events with from_time <= event time < to_time (either may be left open)
    names:          column names for a CSV file that has no header row, in file order
    """

    time_column: str | None = None
    rows_per_hour: int | None = None
    start: datetime | str | None = None
    label_column: str | None = None
    label_delay: timedelta | None = None
    entity_column: str | None = None
    entity: str | None = None
    from_time: datetime | str | None = None
    to_time: datetime | str | None = None
    names: tuple[str, ...] | None = None

    def checked(self) -> ReplayOptions:
        """These options with every time parsed to an aware UTC datetime; ReplayError if they conflict."""
        if (self.time_column is None) == (self.rows_per_hour is None):
            raise ReplayError("time_column / rows_per_hour: give exactly one: the file's event-time column, or "
                              "rows_per_hour (with start) for a file whose rows have only an order")
        start = None
        if self.rows_per_hour is not None:
            if isinstance(self.rows_per_hour, bool) or not isinstance(self.rows_per_hour, int) or self.rows_per_hour < 1:
                raise ReplayError(f"rows_per_hour: must be a whole number >= 1 (got {self.rows_per_hour!r})")
            if self.start is None:
                raise ReplayError("start: rows_per_hour needs the first row's event time, e.g. start=2026-01-01T00:00Z")
            start = parse_instant(self.start, "start")
            if start != floor_hour(start):
                raise ReplayError(f"start: must be on the hour so each hour holds rows_per_hour rows "
                                  f"(got {start.isoformat()}; e.g. {floor_hour(start).isoformat()})")
        elif self.start is not None:
            raise ReplayError("start: only with rows_per_hour; with time_column the file gives each row's time")
        if self.label_delay is not None and (not isinstance(self.label_delay, timedelta) or self.label_delay < timedelta(0)):
            raise ReplayError(f"label_delay: must be a duration >= 0 (got {self.label_delay!r})")
        if self.entity_column is not None and self.entity is not None:
            raise ReplayError("entity / entity_column: give one: a column of entity ids, or one id for every event")
        low = None if self.from_time is None else parse_instant(self.from_time, "from_time")
        high = None if self.to_time is None else parse_instant(self.to_time, "to_time")
        if low is not None and high is not None and low >= high:
            raise ReplayError(f"from_time / to_time: from_time must be before to_time (got {low.isoformat()} >= "
                              f"{high.isoformat()}); the slice keeps from_time <= event time < to_time")
        if self.names is not None and (len(set(self.names)) != len(self.names) or not all(self.names)):
            raise ReplayError(f"names: must be distinct, non-empty column names (got {list(self.names)})")
        return ReplayOptions(self.time_column, self.rows_per_hour, start, self.label_column, self.label_delay,
                             self.entity_column, self.entity, low, high,
                             None if self.names is None else tuple(self.names))


def parse_instant(value: datetime | str, option: str) -> datetime:
    """An option's time as an aware UTC datetime; naive values are UTC."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    moment = event_time_utc(value)
    if moment is None:
        raise ReplayError(f"{option}: cannot read {value!r} as a time; use ISO-8601 such as 2026-01-01T00:00Z")
    return moment


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)
