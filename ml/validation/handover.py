"""What lake_offload hands over when it has validated an hour of telemetry: the `validated_telemetry`
Asset event's extra (and the validate task's value), which schedules monitor_model.

    hour = ValidatedHour.of("telemetry", window, outcome, docs_url, silence)   # -> to_dict() as the extra
    ValidatedHour.from_dict(event.extra).end                                   # the window monitor_model judges

JSON-able through `to_dict`/`from_dict`, so the monitor reads the hour by name and type; `from_dict`
refuses an extra without the topic, hour, rows or status (naming the key).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from ml.handover import require
from ml.lake.window import HOUR, Window

REQUIRED = ("topic", "hour", "rows", "status")


@dataclass(frozen=True)
class ValidatedHour:
    """One validated lake hour: its topic, the hour's start, rows, validation status, warnings, the
    Data Docs' URL, and a change in the stream's silence it brought (`silent`, `back` or None)."""

    topic: str
    hour: datetime
    rows: int
    status: str
    warnings: int = 0
    docs: str | None = None
    silence: str | None = None

    @property
    def end(self) -> datetime:
        """The end of the hour: where the monitor's window for it ends."""
        return self.hour + HOUR

    @classmethod
    def of(cls, topic: str, window: Window, outcome, docs: str | None, silence: str | None) -> "ValidatedHour":
        """The hand-over for `window` as `ml.validation.validate_hour` judged it (`outcome`)."""
        return cls(topic, window.start, int(outcome.rows), outcome.status, len(outcome.warnings), docs, silence)

    def to_dict(self) -> dict:
        return {"topic": self.topic, "hour": self.hour.isoformat(), "rows": self.rows, "status": self.status,
                "warnings": self.warnings, "docs": self.docs, "silence": self.silence}

    @classmethod
    def from_dict(cls, data: dict) -> "ValidatedHour":
        require(data, REQUIRED, "the validated_telemetry event's extra", "lake_offload's validate_partition")
        try:
            hour = datetime.fromisoformat(str(data["hour"]).replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"the validated_telemetry event's hour {data['hour']!r} is not an ISO time; "
                             f"give e.g. 2026-11-22T14:00:00+00:00") from None
        hour = (hour if hour.tzinfo else hour.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
        return cls(str(data["topic"]), hour, int(data["rows"]), str(data["status"]), int(data.get("warnings") or 0),
                   data.get("docs"), data.get("silence"))
