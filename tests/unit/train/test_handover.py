"""The retrain summary crosses from train_candidate to register_challenger as JSON: the shape queued
XComs hold reads back the same, and a dict lacking a key the register step needs is refused by name."""

from __future__ import annotations

import json

import pytest

from ml.handover import HandoverError
from ml.train import RetrainRequest, RetrainSummary

# a train_candidate value as it sits in XCom (the shape every run so far has written)
QUEUED = {
    "run_id": "r1", "model_uri": "models:/m-1", "model_id": "m-1", "experiment_id": "7", "model_sha256": "ab12",
    "request": {"trigger": "request:data", "start": "2026-11-13T05:00:00+00:00", "end": "2026-11-20T08:00:00+00:00",
                "as_of": "2026-11-20T08:05:00+00:00", "hyperparameters": {"max_depth": 4}, "search_seconds": 8.0,
                "regime_since": "2026-11-19T05:00:00+00:00", "judged": ["2"]},
    "rows": {"train": 700, "valid": 150, "holdout": 150}, "data_hash": "f00d", "telemetry_hours": 24,
    "params": {"max_depth": 4, "eta": 0.1}, "metrics": {"holdout_roc_auc": 0.91},
    "champion": {"version": "2", "metrics": {"holdout_roc_auc": 0.8}}, "search_seconds": 7.93, "trials": 5,
    "tags": {"trigger": "request:data", "threshold": "0.5"},
}


def test_a_queued_summary_reads_back_to_the_same_json():
    summary = RetrainSummary.from_dict(json.loads(json.dumps(QUEUED)))
    assert summary.request.trigger == "request:data" and summary.request.judged == ("2",)
    assert summary.champion["version"] == "2" and summary.trials == 5
    assert json.loads(json.dumps(summary.to_dict())) == QUEUED
    assert RetrainSummary.from_dict(summary.to_dict()) == summary


def test_the_run_is_what_register_challenger_registers():
    run = RetrainSummary.from_dict(QUEUED).run
    assert run == {k: QUEUED[k] for k in ("run_id", "model_uri", "model_id", "experiment_id", "model_sha256")}


@pytest.mark.parametrize("key", ["run_id", "model_uri", "model_id", "experiment_id", "request", "metrics", "tags"])
def test_a_summary_lacking_a_required_key_is_refused_naming_it(key):
    with pytest.raises(HandoverError, match=f"the retrain summary lacks '{key}'.*train_candidate"):
        RetrainSummary.from_dict({k: v for k, v in QUEUED.items() if k != key})


def test_the_optional_figures_may_be_missing():
    required = {k: QUEUED[k] for k in ("run_id", "model_uri", "model_id", "experiment_id", "request", "metrics",
                                       "tags")}
    summary = RetrainSummary.from_dict(required)
    assert (summary.model_sha256, summary.rows, summary.champion, summary.trials) == (None, {}, None, 0)


def test_a_request_lacking_its_window_is_refused_naming_the_key():
    request = {k: v for k, v in QUEUED["request"].items() if k != "as_of"}
    with pytest.raises(HandoverError, match="the retrain request lacks 'as_of'"):
        RetrainRequest.from_dict(request)
    with pytest.raises(HandoverError, match="must be a JSON object"):
        RetrainSummary.from_dict(None)
