"""What a retraining run is asked to do: its trigger reason, its window, the hyperparameters a person fixed."""

from __future__ import annotations

from datetime import datetime, timezone

from ml.train import RetrainRequest, plan_request
from plugins.operators.retrain import trigger_reason


def test_the_window_ends_at_the_last_closed_hour():
    now = datetime(2026, 11, 22, 14, 37, 5, tzinfo=timezone.utc)
    request = plan_request("schedule", 2.0, now, {"max_depth": 4, "learning_rate": None})
    assert request.end == datetime(2026, 11, 22, 14, tzinfo=timezone.utc)
    assert request.start == datetime(2026, 11, 20, 14, tzinfo=timezone.utc)
    assert request.as_of == now and request.hyperparameters == {"max_depth": 4}
    assert RetrainRequest.from_dict(request.to_dict()) == request


def test_the_trigger_names_the_request_the_calendar_or_the_person():
    assert trigger_reason("asset_triggered", {}, [{"reason": "drift"}, {"reason": "metric"}]) == "request:drift+metric"
    assert trigger_reason("scheduled", {"reason": "manual"}, []) == "schedule"
    assert trigger_reason("manual", {"reason": "new plant"}, []) == "manual:new plant"
