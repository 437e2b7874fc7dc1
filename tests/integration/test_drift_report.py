"""A drift check's Evidently report and summary land in the real lake, locally and on the S3 endpoint."""

from __future__ import annotations

import json

from ml.contract import load_contract, model_frame
from ml.drift import detect_drift, write_drift_report
from ml.settings import load_settings
from ml.simulate.scenarios import parse_scenario
from ml.simulate.stream import SimConfig, Simulator
from tests.browser import lake_file

CONTRACT = load_contract("machine_telemetry")
HOUR, T0 = 3_600_000, 1_763_596_800_000


def test_the_report_and_its_summary_are_written_to_the_lake(lake, tmp_path, page_in_browser):
    sim = Simulator(CONTRACT, SimConfig(devices=500, rate=5, seed=8, scenarios=(parse_scenario("covariate@+2h", T0),)))
    reference = model_frame(CONTRACT, sim.frame(T0, T0 + 2 * HOUR, with_label=False))
    current = model_frame(CONTRACT, sim.frame(T0 + 2 * HOUR, T0 + 3 * HOUR, with_label=False))
    result, snapshot = detect_drift(CONTRACT, reference, current, load_settings(drift_sample_rows=10_000).drift,
                                    {"torque_nm": 3.0, "tool_wear_min": 2.0})
    html = tmp_path / "report.html"
    snapshot.save_html(str(html))

    keys = write_drift_report(lake, result, html, "manual__2026-11-22T12")

    assert keys == {"html": "reports/drift/manual__2026-11-22T12/report.html",
                    "summary": "reports/drift/manual__2026-11-22T12/summary.json"}
    assert lake.list("reports/drift") == sorted(keys.values())
    page = lake.read_bytes(keys["html"])
    assert page == html.read_bytes() and b"<!DOCTYPE html>" in page[:200]
    assert b"air_temperature_k" in page
    summary = json.loads(lake.read_text(keys["summary"]))
    assert summary["run"] == "manual__2026-11-22T12" and summary["report"] == keys["html"]
    assert "site" in summary["drifted"] and summary["window_drifted"] is True
    assert summary["top_features"] == ["torque_nm", "tool_wear_min"] and summary["top_drifted"] == ["torque_nm"]
    assert summary["drift_share"] == result.drift_share and len(summary["features"]) == len(CONTRACT.model_columns)

    # Evidently draws the page with its own script: in Chromium, a row per column with both distributions
    # painted, and the columns it marks drifted those of the summary
    (tmp_path / "shown").mkdir()
    shown = page_in_browser.open(lake_file(lake, keys["html"], tmp_path / "shown"), ready="tr canvas")
    assert shown.errors == []
    rows = shown.cells("tr:has(canvas)")
    assert sorted(row[1] for row in rows) == sorted(CONTRACT.model_columns)
    assert {row[1] for row in rows if row[5] == "Detected"} == set(summary["drifted"])
    assert shown.painted("tr canvas") == 2 * len(rows)
