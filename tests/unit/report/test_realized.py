"""The loop report's live AUC per serving version: the figures the monitor recorded, and each window's
figures realized once its labels arrived, read from the lake at report time."""

from __future__ import annotations

import json
import re
from html import unescape
from datetime import datetime, timedelta, timezone

from ml.lake import Lake
from ml.report import build_loop_report, read_loop
from tests.unit.lake_hours import CONTRACT, observed, served

START = datetime(2026, 11, 22, tzinfo=timezone.utc)
H = timedelta(hours=1)
AT = START + 4 * H  # the decision's window end; its realized window is [START+2h, START+4h)
LABELS = {"a0": 1, "a1": 0, "a2": 0, "a3": 0, "b0": 1, "b1": 0, "b2": 1, "c0": 0, "c1": 0}


def record() -> dict:
    """The decision at AT: v1 champion, its live window 2 h long ending 6 h (the label delay) before AT."""
    return {"run_id": f"monitor-{AT:%Y%m%dT%H%M}", "kind": "none", "reason": "calm", "model": "machine-failure",
            "evidence": {"now": AT.isoformat()}, "champion": {"version": "1", "holdout_roc_auc": 0.9},
            "policy": {"min_mature_labels": 4, "live_auc_floor": 0.7},
            "live": {"start": (AT - 8 * H).isoformat(), "end": (AT - 6 * H).isoformat(), "version": "1",
                     "roc_auc": 0.8, "judged": True, "predictions": 900, "labels": 800, "mature": 800},
            "live_by_version": {"1": {"predictions": 900, "labels": 800, "coverage": 0.89, "accuracy": 0.8,
                                      "roc_auc": 0.8}}}


def write_lake(tmp_path) -> Lake:
    """v1 served hour 2, v2 (promoted) and v3 (a shadow) hour 3; labels observed in hour 4."""
    lake = Lake(str(tmp_path / "lake"))
    lake.write_text(f"decisions/{record()['run_id']}.json", json.dumps(record()))
    served(lake, START + 2 * H, [("a0", "1", 0.9), ("a1", "1", 0.6), ("a2", "1", 0.2), ("a3", "1", 0.7)])
    served(lake, START + 3 * H, [("b0", "2", 0.8), ("b1", "2", 0.3), ("b2", "2", 0.7), ("c0", "3", 0.6),
                                 ("c1", "3", 0.1)])
    served(lake, START + 4 * H, [("d0", "2", 0.9)])  # after the window: not in its figures
    observed(lake, START + 4 * H, LABELS)
    return lake


def points(page: str, cls: str) -> list[str]:
    return [unescape(t) for t in re.findall(rf'class="{cls}"[^>]*><title>([^<]+)</title>', page)]


def test_windows_are_realized_only_once_their_labels_have_all_had_time_to_arrive(tmp_path):
    lake = write_lake(tmp_path)
    observed(lake, START + 8 * H, {})  # outcomes offloaded to AT + 5 h: a 6 h delay may still bring labels
    assert read_loop(lake, "machine-failure", contract=CONTRACT).decisions[0].realized == {}
    page = lake.read_text(build_loop_report(lake, "machine-failure", contract=CONTRACT)["key"])
    assert points(page, "realized-point") == [] and len(points(page, "live-point")) == 1
    observed(lake, START + 9 * H, {})  # to AT + 6 h: every label of the window has come
    realized = read_loop(lake, "machine-failure", contract=CONTRACT).decisions[0].realized
    assert realized == {
        "1": {"predictions": 4, "labels": 4, "coverage": 1.0, "accuracy": 0.5, "roc_auc": 1.0},
        "2": {"predictions": 3, "labels": 3, "coverage": 1.0, "accuracy": 1.0, "roc_auc": 1.0},
        "3": {"predictions": 2, "labels": 2, "coverage": 1.0, "accuracy": 0.5, "roc_auc": None}}


def test_the_chart_draws_each_serving_version_at_the_monitor_s_run_and_realized_later(tmp_path):
    lake = write_lake(tmp_path)
    observed(lake, START + 9 * H, {})
    result = build_loop_report(lake, "machine-failure", contract=CONTRACT)
    page = lake.read_text(result["key"])
    assert "live_auc" in result["figures"]
    assert points(page, "live-point") == ["monitor-20261122T0400: v1 live AUC 0.8000 at the monitor's run, "
                                          "800 labels of 900 predictions, accuracy 0.8000"]
    realized = points(page, "realized-point")  # v3's labels hold one class: no AUC to draw
    assert realized == ["monitor-20261122T0400: v1 live AUC 1.0000 realized later on the events of the 2 h to "
                        "04:00, 4 labels of 4 predictions, accuracy 0.5000",
                        "monitor-20261122T0400: v2 live AUC 1.0000 realized later on the events of the 2 h to "
                        "04:00, 3 labels of 3 predictions, accuracy 1.0000 (too few mature labels to judge)"]
    legend = page[page.index('<figure id="live_auc"'):page.index("</figure>", page.index('<figure id="live_auc"'))]
    assert ">v1</span>" in legend and ">v2</span>" in legend and ">v3</span>" not in legend


def test_a_version_under_the_policy_s_fewest_labels_is_drawn_hollow(tmp_path):
    lake = write_lake(tmp_path)
    observed(lake, START + 9 * H, {})
    page = lake.read_text(build_loop_report(lake, "machine-failure", contract=CONTRACT)["key"])
    fills = {v: fill for fill, v in re.findall(r'<rect class="realized-point"[^>]*fill="([^"]+)"[^>]*>'
                                               r'<title>[^:]+: (v\d)', page)}
    assert fills["v2"] == "#fff" and fills["v1"] != "#fff"  # 3 labels of v2, 4 of v1: the policy needs 4
