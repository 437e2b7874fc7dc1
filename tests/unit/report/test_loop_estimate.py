"""The live chart of the loop report draws the AUC estimated before labels beside the live and realized ones."""

from __future__ import annotations

import json
import re

from ml.lake import Lake
from ml.report import build_loop_report
from tests.unit.report.test_loop import count, decision


def test_the_estimated_auc_is_a_dotted_series_per_version_with_its_points(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    records = [decision(1), decision(2), decision(3, auc=None), decision(4, version="4")]
    estimates = {1: (0.9, False), 2: (0.88, True), 3: (0.61, False)}  # hour 4: a champion without a calibration
    for hour, record in enumerate(records, start=1):
        if hour in estimates:
            auc, unreliable = estimates[hour]
            record["estimated"] = {"recent": {"roc_auc": auc, "rows": 1000}, "matured": {}, "unreliable": unreliable}
        lake.write_text(f"decisions/{record['run_id']}.json", json.dumps(record))
    build_loop_report(lake, "machine-failure", {})
    page = lake.read_text("reports/loop/index.html")
    assert count(page, "estimated-point") == 3 and count(page, "estimated v3") == 1
    assert "estimated v4" not in page
    tips = re.findall(r'class="estimated-point"[^>]*><title>([^<]+)</title>', page)
    assert [t.split(": ")[1].split(" at ")[0] for t in tips] == [
        "v3 AUC estimated 0.9000", "v3 AUC estimated 0.8800", "v3 AUC estimated 0.6100"]
    assert sum("estimator unreliable" in t for t in tips) == 1
    assert "dotted: estimated at the monitor&#x27;s run, before the labels" in page
