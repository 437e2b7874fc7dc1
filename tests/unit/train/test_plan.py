"""What a retraining run is asked to do: its trigger reason, its window, the hyperparameters a person fixed."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from ml.monitor.handover import RetrainAsk
from ml.train import RetrainRequest, plan_request
from plugins.tasks.retrain import stale_requests, trigger_reason


def test_the_window_ends_at_the_last_closed_hour():
    now = datetime(2026, 11, 22, 14, 37, 5, tzinfo=timezone.utc)
    request = plan_request("schedule", 2.0, now, {"max_depth": 4, "learning_rate": None})
    assert request.end == datetime(2026, 11, 22, 14, tzinfo=timezone.utc)
    assert request.start == datetime(2026, 11, 20, 14, tzinfo=timezone.utc)
    assert request.as_of == now and request.hyperparameters == {"max_depth": 4}
    assert RetrainRequest.from_dict(request.to_dict()) == request


def test_the_trigger_names_the_request_the_calendar_or_the_person():
    asks = [RetrainAsk.from_dict({"reason": "drift"}), RetrainAsk.from_dict({"decision": "metric"}), RetrainAsk()]
    assert trigger_reason("asset_triggered", {}, asks) == "request:drift+metric+request"
    assert trigger_reason("scheduled", {"reason": "manual"}, []) == "schedule"
    assert trigger_reason("manual", {"reason": "new plant"}, []) == "manual:new plant"


def test_a_drift_request_keeps_where_its_regime_began():
    now = datetime(2026, 11, 22, 14, 37, 5, tzinfo=timezone.utc)
    request = replace(plan_request("request:data", 7.0, now), regime_since=datetime(2026, 11, 22, 3, tzinfo=timezone.utc),
                      judged=("3", None))
    assert RetrainRequest.from_dict(request.to_dict()) == request
    assert plan_request("schedule", 7.0, now).to_dict()["regime_since"] is None


def test_requests_answered_by_a_newer_champion_are_stale():
    assert stale_requests([], "2") is None  # calendar and manual runs
    assert stale_requests(["1", "2"], "2") is None
    assert stale_requests([None], "2") is None
    assert "champion is now v3" in stale_requests(["1", "2"], "3")
