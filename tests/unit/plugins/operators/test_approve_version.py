"""promote_model's approval request: only a user of CONTINUUM_APPROVERS answers it (an answer from
anyone else, the pipeline's account or Airflow's admin, records nothing), and a version with nothing
left to decide asks no one."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from airflow.sdk.exceptions import AirflowFailException

from ml.lake import Lake
from ml.lake.layout import verdict_key
from ml.registry.trust import read_verdict
from plugins.operators.approve_version import APPROVE, ApproveVersionOperator

NOW = datetime.now(timezone.utc)


@pytest.fixture
def lake(tmp_path, monkeypatch) -> Lake:
    """A lake holding the verdict of mf v7: gates passed, waiting for a person."""
    monkeypatch.setenv("CONTINUUM_LAKE_URI", str(tmp_path))
    monkeypatch.setenv("CONTINUUM_MODEL_NAME", "mf")
    monkeypatch.setenv("CONTINUUM_APPROVERS", "approver, alice")
    lake = Lake(str(tmp_path))
    lake.write_text(verdict_key("mf", "7"), json.dumps({"model": "mf", "version": "7", "digest": "a" * 64,
                                                        "passed": True, "gates": [], "approval": None}))
    return lake


def answer(user: dict | None, option: str = APPROVE) -> dict:
    return {"chosen_options": [option], "params_input": {"reason": "looks right"}, "responded_at": NOW,
            "responded_by_user": user, "timedout": False}


@pytest.mark.parametrize("user", [{"id": "pipeline", "name": "pipeline"}, {"id": "admin", "name": "admin"}, None])
def test_an_answer_from_anyone_but_an_approver_records_nothing(lake, user):
    operator = ApproveVersionOperator(task_id="wait_for_approval", version="7")
    with pytest.raises(AirflowFailException, match=r"is not an approver \(approver, alice: CONTINUUM_APPROVERS\)"):
        operator.execute_complete({}, answer(user))
    assert read_verdict(lake, "mf", "7")["approval"] is None


def test_a_version_with_nothing_left_to_decide_asks_no_one(lake):
    operator = ApproveVersionOperator(task_id="wait_for_approval", version="7")
    record = read_verdict(lake, "mf", "7")
    for decision, at in (("approved", NOW - timedelta(hours=1)), ("rejected", NOW - timedelta(days=30))):
        record["approval"] = {"decision": decision, "by": "alice", "how": "manual", "reason": "r",
                              "at": at.isoformat(), "digest": "a" * 64}
        lake.write_text(verdict_key("mf", "7"), json.dumps(record))
        assert operator.execute({}) == {"version": "7", "approval": decision, "by": "alice"}  # no context needed
