"""Put a drift check's report in the lake: Evidently's HTML and the result's JSON summary, per run.

The HTML is Evidently's, for a person to read; the summary is the `DriftResult` as JSON, for the policy
and the alert that follow, so neither has to parse HTML. Where they go is `ml.lake.layout`'s.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ml.drift.detect import DriftResult
from ml.lake import Lake
from ml.lake.layout import drift_report_key, drift_summary_key


def write_drift_report(lake: Lake, result: DriftResult, html_path: str | Path, run: str) -> dict[str, str]:
    """Put the saved Evidently HTML and the JSON summary in the lake; returns their keys. The summary is
    written last, so a summary present means its report is too."""
    keys = {"html": drift_report_key(run), "summary": drift_summary_key(run)}
    with lake.staged(keys["html"]) as staged:
        shutil.copyfile(html_path, staged)
    summary = {"run": run, "report": keys["html"], **result.to_dict()}
    lake.write_text(keys["summary"], json.dumps(summary, sort_keys=True, indent=2))
    return keys
