"""Where a drift check's report lives in the lake: `reports/drift/<run>/report.html` and `summary.json`.

The HTML is Evidently's, for a person to read; the summary is the `DriftResult` as JSON, for the policy
and the alert that follow, so neither has to parse HTML.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ml.drift.detect import DriftResult
from ml.lake import Lake


def drift_report_keys(run: str) -> dict[str, str]:
    """The lake keys of one run's drift report and summary."""
    base = f"reports/drift/{run}"
    return {"html": f"{base}/report.html", "summary": f"{base}/summary.json"}


def write_drift_report(lake: Lake, result: DriftResult, html_path: str | Path, run: str) -> dict[str, str]:
    """Put the saved Evidently HTML and the JSON summary in the lake; returns their keys. The summary is
    written last, so a summary present means its report is too."""
    keys = drift_report_keys(run)
    with lake.staged(keys["html"]) as staged:
        shutil.copyfile(html_path, staged)
    summary = {"run": run, "report": keys["html"], **result.to_dict()}
    lake.write_text(keys["summary"], json.dumps(summary, sort_keys=True, indent=2))
    return keys
