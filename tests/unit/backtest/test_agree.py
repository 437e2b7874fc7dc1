"""The backtest's decisions per window against a paced run's recorded ones: agreement, and each kind of
disagreement found and named (kind, retrain, a window one side lacks)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ml.backtest.agree import MISSING, describe, disagreements, recorded_decisions, window_ends
from ml.backtest.engine import PolicyRun
from ml.backtest.policies import configured, every
from ml.lake import Lake
from ml.monitor.run import run_id_for
from ml.policy import DATA, METRIC, NONE, Decision, record_decision

START = datetime(2026, 3, 1, 4, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
KINDS = [(NONE, False), (NONE, False), (DATA, True), (DATA, False), (METRIC, True)]


def played(kinds=KINDS) -> PolicyRun:
    run = PolicyRun(configured())
    run.hours = [{"hour": START + i * HOUR, "rows": 10, "champion": "1", "kind": kind, "retrain": retrain}
                 for i, (kind, retrain) in enumerate(kinds)]
    return run


@pytest.fixture
def lake(tmp_path) -> Lake:
    """A paced run's decisions as monitor_model records them, one per window of `played()`."""
    lake = Lake(str(tmp_path / "lake"))
    for i, (kind, retrain) in enumerate(KINDS):
        end = START + (i + 1) * HOUR
        held = None if retrain or kind == NONE else "cooldown"
        record_decision(lake, Decision(kind, "test", {"now": end.isoformat()}, suppressed_by=held), run_id_for(end))
    return lake


def test_the_same_decisions_agree(lake):
    run = played()
    recorded = recorded_decisions(lake, window_ends(run))
    assert set(recorded) == {START + i * HOUR for i in range(1, 6)} and all(recorded.values())
    assert disagreements(recorded, run) == []
    assert describe([]) == "every window's decision agrees"


def test_a_different_kind_is_a_disagreement(lake):
    kinds = list(KINDS)
    kinds[1] = (METRIC, False)  # same retrain (no), other kind
    found = disagreements(recorded_decisions(lake, window_ends(played(kinds))), played(kinds))
    assert [(d.end, d.field, d.loop, d.backtest) for d in found] == [(START + 2 * HOUR, "kind", NONE, METRIC)]
    assert "window ending 2026-03-01 06:00Z: kind: loop none, backtest metric" in describe(found)


def test_a_retrain_one_side_asked_for_is_a_disagreement(lake):
    kinds = list(KINDS)
    kinds[3] = (DATA, True)  # same kind, but this side asked for a retrain (the loop's was suppressed)
    found = disagreements(recorded_decisions(lake, window_ends(played(kinds))), played(kinds))
    assert [(d.end, d.field, d.loop, d.backtest) for d in found] == [
        (START + 4 * HOUR, "retrain", "no retrain", "retrain")]


def test_a_window_either_side_lacks_is_a_disagreement(lake):
    longer = played(KINDS + [(NONE, False)])  # the backtest judged one more window than the loop recorded
    found = disagreements(recorded_decisions(lake, window_ends(longer)), longer)
    assert [(d.end, d.field, d.loop, d.backtest) for d in found] == [(START + 6 * HOUR, "missing", MISSING, NONE)]
    shorter = played(KINDS[:-1])
    recorded = recorded_decisions(lake, window_ends(played()))  # the loop judged the last window, the backtest did not
    found = disagreements(recorded, shorter)
    assert [(d.end, d.field, d.loop, d.backtest) for d in found] == [
        (START + 5 * HOUR, "missing", "metric -> retrain", MISSING)]


def test_only_a_policy_that_decides_per_window_is_compared(lake):
    with pytest.raises(ValueError, match="does not decide per window"):
        disagreements({}, PolicyRun(every(24)))
