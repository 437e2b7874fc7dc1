"""What an approval promotes: the bytes approved only, and only until CONTINUUM_APPROVAL_TTL_HOURS have
passed since it was given; the same decision given again after that is a new approval."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from ml.lake import Lake
from ml.lake.layout import verdict_key
from ml.registry.trust import NotApproved, read_verdict, record_approval, valid_approval

A, B = "a" * 64, "b" * 64
AT = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def verdict(decision: str | None = "approved", digest: str = A) -> dict:
    approval = None if decision is None else {"decision": decision, "by": "alice", "how": "manual",
                                              "reason": "r", "at": AT.isoformat(), "digest": digest}
    return {"model": "mf", "version": "7", "digest": A, "passed": True, "gates": [], "approval": approval}


def test_an_approval_promotes_only_the_bytes_approved():
    assert valid_approval(verdict(), A, 24, AT)["by"] == "alice"
    with pytest.raises(NotApproved, match=f"approved for a model file with sha256 {A}, but its file is sha256 {B}"):
        valid_approval(verdict(), B, 24, AT)


def test_an_approval_expires_when_its_ttl_has_passed():
    assert valid_approval(verdict(), A, 24, AT + timedelta(hours=24) - timedelta(seconds=1))
    with pytest.raises(NotApproved, match="approval by alice at .* expired after 24 h"):
        valid_approval(verdict(), A, 24, AT + timedelta(hours=24))
    assert valid_approval(verdict(), A, 0.5, AT + timedelta(minutes=29, seconds=59))
    with pytest.raises(NotApproved, match="expired after 0.5 h"):
        valid_approval(verdict(), A, 0.5, AT + timedelta(minutes=30))


def test_no_approval_or_a_rejection_promotes_nothing():
    for record, said in ((verdict(None), "no decision recorded"), (verdict("rejected"), "rejected by alice"),
                         (None, "no decision recorded")):
        with pytest.raises(NotApproved, match=said):
            valid_approval(record, A, 24, AT)


def test_the_same_decision_again_keeps_its_time_until_it_expired(tmp_path):
    lake = Lake(str(tmp_path))
    now = datetime.now(timezone.utc)
    recent = {**verdict(), "approval": {**verdict()["approval"], "at": (now - timedelta(hours=23)).isoformat()}}
    lake.write_text(verdict_key("mf", "7"), json.dumps(recent))
    record_approval(lake, "mf", "7", "approved", "alice", "manual", "again", ttl_hours=24)
    assert read_verdict(lake, "mf", "7")["approval"] == recent["approval"], "a retried task keeps the first"
    old = {**recent, "approval": {**recent["approval"], "at": (now - timedelta(hours=24)).isoformat()}}
    lake.write_text(verdict_key("mf", "7"), json.dumps(old))
    record_approval(lake, "mf", "7", "approved", "alice", "manual", "again", ttl_hours=24)
    given = read_verdict(lake, "mf", "7")["approval"]
    assert datetime.fromisoformat(given["at"]) >= now - timedelta(seconds=1) and given["reason"] == "again"
    assert valid_approval(read_verdict(lake, "mf", "7"), A, 24, datetime.now(timezone.utc))
