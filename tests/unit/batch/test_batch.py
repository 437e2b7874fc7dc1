"""Which days a batch_score run scores, when it may start, and what the daily summary says about labels."""

from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ml.batch import batch_schema
from ml.batch.score import DayScores
from ml.batch.summary import summarize
from ml.contract import load_contract
from ml.lake import Lake
from ml.serving.model import ServingModel
from plugins.tasks.batch import plan_days, settled

CONTRACT = load_contract("machine_telemetry")
UTC = timezone.utc


def test_params_win_over_the_data_interval_and_one_date_alone_is_one_day():
    interval = (datetime(2026, 11, 21, tzinfo=UTC), datetime(2026, 11, 22, tzinfo=UTC))
    days = ["2026-11-18", "2026-11-19", "2026-11-20"]
    assert plan_days({"start": "2026-11-18", "end": "2026-11-20"}, *interval) == days
    assert plan_days({"start": "2026-11-18", "end": None}, *interval) == ["2026-11-18"]
    assert plan_days({"start": "", "end": "2026-11-19"}, *interval) == ["2026-11-19"]
    assert plan_days({"start": None, "end": None}, *interval) == ["2026-11-21"]
    assert plan_days({}, None, None, datetime(2026, 11, 22, 9, 30, tzinfo=UTC)) == ["2026-11-21"]


@pytest.mark.parametrize("params, message", [
    ({"start": "2026-11-20", "end": "2026-11-19"}, "end 2026-11-19 is before start 2026-11-20"),
    ({"start": "2025-01-01", "end": "2026-11-19"}, "at most 366"),
    ({"start": "20/11/2026"}, "param start: '20/11/2026' is not a date"),
])
def test_a_range_that_makes_no_sense_is_refused_with_the_reason(params, message):
    with pytest.raises(ValueError, match=message):
        plan_days(params, None, None)


def test_a_day_is_scored_only_once_the_delay_after_it_has_passed(monkeypatch):
    monkeypatch.setenv("CONTINUUM_BATCH_DELAY_MINUTES", "90")
    assert not settled("2026-11-21", datetime(2026, 11, 22, 1, 29, tzinfo=UTC))
    assert settled("2026-11-21", datetime(2026, 11, 22, 1, 30, tzinfo=UTC))


def _scores(p: list[float]) -> DayScores:
    n = len(p)
    table = pa.Table.from_arrays([
        pa.array([f"e{i}" for i in range(n)]), pa.array(["d"] * n),
        pa.array([datetime(2026, 11, 21, 10, tzinfo=UTC)] * n, pa.timestamp("ms", tz="UTC")),
        pa.array(p, pa.float64()), pa.array(np.where(np.array(p) >= 0.5, "alert", "normal")),
        pa.array(["m"] * n), pa.array(["3"] * n)], schema=batch_schema(CONTRACT))
    return DayScores(date(2026, 11, 21), ServingModel("m", "3", None, 0.5), "k", table, ["2026-11-21T10:00:00+00:00"])


def _outcomes(labels: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame({"event_id": list(labels), "failure": list(labels.values())})


@pytest.mark.parametrize("labels, labelled, note", [
    ({}, 0, "no matured outcomes"),
    ({"e0": 0, "e1": 0}, 2, "one class only"),
    ({"e0": 0, "e1": 0, "e2": 1, "e3": 1}, 4, ""),
])
def test_the_summary_reports_accuracy_only_when_labels_allow_it(labels, labelled, note, tmp_path):
    summary = summarize(_scores([0.1, 0.2, 0.7, 0.9, 0.6]), _outcomes(labels), ["h"], CONTRACT, Lake(str(tmp_path)))
    assert (summary["events"], summary["alerts"], summary["alert_rate"]) == (5, 3, 0.6)
    assert sum(summary["score"]["histogram"]["counts"]) == 5 and summary["score"]["quantiles"]["p50"] == 0.6
    got = summary["labels"]
    assert got["labelled"] == labelled and got["coverage"] == labelled / 5 and note in got["note"]
    if note:
        assert got["metrics"] is None
    else:
        assert got["metrics"]["roc_auc"] == 1.0 and got["metrics"]["precision"] == 1.0
