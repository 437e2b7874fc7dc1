"""The validated_telemetry Asset's extra: what lake_offload writes for a validated hour reads back the
same, tells monitor_model which window to judge, and an extra lacking a key is refused by name."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from ml.handover import HandoverError
from ml.lake.window import Window
from ml.validation import VALID, ValidationOutcome
from ml.validation.handover import ValidatedHour
from plugins.tasks.monitor import window_ends

HOUR = datetime(2026, 11, 22, 13, tzinfo=timezone.utc)
# an extra as lake_offload has always written it (queued Asset events hold this shape)
QUEUED = {"topic": "telemetry", "hour": "2026-11-22T13:00:00+00:00", "rows": 1800, "status": "valid",
          "warnings": 1, "docs": "s3://lake/validation/docs/index.html", "silence": None}


def test_the_extra_of_a_validated_hour_keeps_its_shape_and_comes_back_the_same():
    outcome = ValidationOutcome(VALID, False, [], ["a value out of range"], rows=1800)
    hour = ValidatedHour.of("telemetry", Window.hour(HOUR), outcome, QUEUED["docs"], None)
    assert json.loads(json.dumps(hour.to_dict())) == QUEUED
    assert ValidatedHour.from_dict(QUEUED) == hour
    assert hour.end == datetime(2026, 11, 22, 14, tzinfo=timezone.utc)


def test_the_monitor_judges_the_window_ending_with_each_announced_hour():
    later = {**QUEUED, "hour": "2026-11-22T15:00:00Z"}  # a Z suffix reads as UTC
    assert window_ends({}, [later, QUEUED, {}]) == ["2026-11-22T14:00:00+00:00", "2026-11-22T16:00:00+00:00"]


@pytest.mark.parametrize("key", ["topic", "hour", "rows", "status"])
def test_an_extra_lacking_a_required_key_is_refused_naming_it(key):
    extra = {k: v for k, v in QUEUED.items() if k != key}
    with pytest.raises(HandoverError, match=f"lacks '{key}'.*validate_partition"):
        ValidatedHour.from_dict(extra)
    with pytest.raises(HandoverError, match=f"lacks '{key}'"):
        window_ends({}, [extra])


def test_an_extra_whose_hour_is_not_a_time_is_refused_naming_it():
    with pytest.raises(ValueError, match="hour 'yesterday' is not an ISO time"):
        ValidatedHour.from_dict({**QUEUED, "hour": "yesterday"})
