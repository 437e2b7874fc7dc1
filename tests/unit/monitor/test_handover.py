"""The monitor's hand-overs: a window's outcome between tasks, the retrain it asks for on the Asset."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from ml.monitor.handover import RetrainAsk, WindowOutcome
from plugins.tasks.monitor import retrain_request
from plugins.tasks.retrain import trigger_reason

END = "2026-11-22T14:00:00+00:00"


def monitored(run: str, retrain: bool, since: str | None, kind: str = "data") -> dict:
    """What `monitor_hour` returns for a window, trimmed to what the hand-over reads."""
    return {"run_id": run, "window": {"start": "2026-11-22T08:00:00+00:00", "end": END, "hours": 6},
            "decision": {"kind": kind, "retrain": retrain, "reason": f"{kind} fired", "suppressed_by": None},
            "drift": {"drift_share": 0.5}, "live": None, "champion": {"version": "4"},
            "links": {"report": "s3://lake/report.html"}, "regime_since": since}


def test_an_outcome_crosses_a_task_as_json_and_comes_back_the_same():
    outcome = WindowOutcome.of(monitored("monitor-1", True, "2026-11-22T09:00:00+00:00"), "s3://lake/loop.html")
    assert (outcome.kind, outcome.retrain, outcome.champion, outcome.drift_share, outcome.end) == (
        "data", True, "4", 0.5, END)
    assert outcome.links == {"report": "s3://lake/report.html", "loop_report": "s3://lake/loop.html"}
    assert WindowOutcome.from_dict(json.loads(json.dumps(outcome.to_dict()))) == outcome


def test_the_asset_extra_is_a_retrain_ask_that_comes_back_the_same():
    outcomes = [WindowOutcome.of(monitored("monitor-1", True, "2026-11-22T09:00:00+00:00")),
                WindowOutcome.of(monitored("monitor-2", False, None)),
                WindowOutcome.of(monitored("monitor-3", True, "2026-11-22T03:00:00+00:00", kind="metric"))]
    ask = RetrainAsk.of(outcomes)
    assert ask.reason == "metric" and ask.run_id == "monitor-3" and ask.decisions == ("monitor-1", "monitor-3")
    assert ask.regime_since == datetime(2026, 11, 22, 3, tzinfo=timezone.utc)  # the earliest change seen
    extra = json.loads(json.dumps(ask.to_dict()))
    assert RetrainAsk.from_dict(extra) == ask
    assert retrain_request([o.to_dict() for o in outcomes]) == extra  # what monitor_model puts on the Asset
    assert RetrainAsk.of(outcomes[1:2]) is None


def test_a_hand_written_extra_is_read_with_defaults():
    ask = RetrainAsk.from_dict({"decision": "data"})
    assert (ask.reason, ask.champion, ask.regime_since, ask.decisions) == ("data", None, None, ())
    assert trigger_reason("asset_triggered", {}, [RetrainAsk.from_dict({})]) == "request:request"
