"""The lake's unit of time: a half-open UTC window, and the hour every hourly dataset is filed under.

Offload, validation, drift, live metrics, training and batch scoring all name their hours with
`Window`, so an hour means the same interval everywhere: [start, end), never overlapping the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Window:
    """A half-open time interval [start, end) in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self):
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"window end {self.end.isoformat()} is not after its start {self.start.isoformat()}")

    @classmethod
    def hour(cls, value: str | datetime) -> "Window":
        """The hour starting at `value` (an ISO time such as 2026-11-22T13 or 2026-11-22T13:00Z)."""
        if isinstance(value, str):
            text = value.strip().replace("Z", "+00:00")
            if len(text) == 13:  # YYYY-MM-DDTHH
                text += ":00"
            try:
                value = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"not an hour: {value!r}; use e.g. 2026-11-22T13 or 2026-11-22T13:00Z") from None
        start = (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
        if (start.minute, start.second, start.microsecond) != (0, 0, 0):
            raise ValueError(f"{value.isoformat()} is not the start of an hour")
        return cls(start, start + HOUR)

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return int(self.end.timestamp() * 1000)

    @property
    def partition_path(self) -> str:
        """Hive-style folder of the hour: dt=YYYY-MM-DD/hour=HH."""
        return f"dt={self.start:%Y-%m-%d}/hour={self.start:%H}"

    def hours(self) -> list["Window"]:
        """The whole hours this window covers."""
        out, t = [], self.start
        while t < self.end:
            out.append(Window(t, t + HOUR))
            t += HOUR
        return out
