"""One day, one version: score, summarize against the outcomes the lake holds, write both."""

from __future__ import annotations

import json
from datetime import date

from ml.batch.page import render
from ml.batch.score import day_window, score_day
from ml.batch.summary import day_outcomes, summarize
from ml.contract import Contract
from ml.lake import Lake
from ml.lake.layout import daily_report_key
from ml.serving.model import ServingModel


def batch_day(lake: Lake, contract: Contract, model: ServingModel, day: date) -> dict:
    """Score `day` with `model`, write its predictions and its summary (JSON and HTML); returns the summary
    with where everything went. BatchError if the day has no valid telemetry hours."""
    scores = score_day(lake, contract, model, day)
    outcomes, outcome_hours = day_outcomes(lake, contract, day_window(day))
    summary = summarize(scores, outcomes, outcome_hours, contract, lake)
    json_key, html_key = (daily_report_key(scores.day, scores.model.version, ext) for ext in ("json", "html"))
    lake.write_text(json_key, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    lake.write_text(html_key, render(summary))
    summary["report"] = lake.url(html_key)
    return summary
