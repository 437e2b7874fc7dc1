"""The loop report: every series drawn from the records the loop leaves, hostile text escaped, empty or
broken lake parts shown as notes, and the console script's arguments checked."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ml.contract import load_contract
from ml.lake import Lake
from ml.contract.codec import codec_for
from ml.lake.layout import raw_prefix
from ml.lake.window import Window
from ml.offload.writer import HourWriter
from ml.report import build_loop_report
from ml.report.cli import main

START = datetime(2026, 11, 22, 0, 0, tzinfo=timezone.utc)
POLICY = {"drift_share_threshold": 0.3, "live_auc_floor": 0.7, "live_auc_drop_margin": 0.05, "drift_windows_k": 3}
CONTRACT = load_contract("machine_telemetry")


def decision(hour: int, kind: str = "none", retrain: bool = False, suppressed_by: str | None = None,
             auc: float | None = 0.91, share: float = 0.1, version: str = "3", reason: str = "") -> dict:
    """A decision record as monitor_model writes it for the window ending at START + hour."""
    end = START + timedelta(hours=hour)
    run_id = f"monitor-{end:%Y%m%dT%H%M}"
    return {
        "run_id": run_id, "kind": kind, "reason": reason or f"{kind} at hour {hour}", "retrain": retrain,
        "suppressed_by": suppressed_by, "fired": [] if kind == "none" else [kind], "policy": POLICY,
        "evidence": {"now": end.isoformat(), "drift_shares": [share], "live_auc": auc, "live_labels": 800,
                     "mature_labels": 700, "champion_auc": 0.93, "model_age_hours": 20.0 + hour, "recent_retrains": []},
        "window": {"start": (end - timedelta(hours=1)).isoformat(), "end": end.isoformat(), "hours": 1},
        "champion": {"version": version, "holdout_roc_auc": 0.93},
        "drift": {"drift_share": share, "drifted": ["vibration_rms"] if share > 0.3 else [], "top_features": [],
                  "report": f"reports/drift/{run_id}/report.html", "summary": f"reports/drift/{run_id}/summary.json"},
        "live": {"roc_auc": auc, "pr_auc": 0.4, "precision": 0.5, "recall": 0.6, "predictions": 1000, "labels": 800,
                 "mature": 700, "coverage": 0.8, "judged": auc is not None},
        "links": {"report": f"reports/drift/{run_id}/report.html", "mlflow_run": "http://127.0.0.1:5000/#/runs/abc"},
    }


def audit(hour: float, kind: str, old: str | None, new: str, reason: str = "beats the champion") -> dict:
    at = (START + timedelta(hours=hour)).isoformat(timespec="seconds")
    return {"type": kind, "model": "machine-failure", "alias": "champion", "from": old, "to": new,
            "actor": "promote_model", "at": at, "reason": reason}


def write_predictions(lake: Lake, hour: int, versions: dict[str, int], model: str = "machine-failure") -> None:
    """One offloaded predictions hour (files and manifest) holding `versions[v]` events of each version."""
    window = Window.hour(START + timedelta(hours=hour))
    schema = codec_for(CONTRACT, "predictions").output_schema
    n = sum(versions.values())
    df = pd.DataFrame({
        "event_id": [f"e-{hour}-{i}" for i in range(n)], "device_id": [f"d-{i % 7}" for i in range(n)],
        "model_name": model, "model_version": [v for v, k in versions.items() for _ in range(k)],
        "score": np.linspace(0, 1, n), "decision": "ok",
        "served_at": pd.date_range(window.start, periods=n, freq="s", tz="UTC").astype("datetime64[ms, UTC]"),
        "latency_ms": 2.0, "kafka_partition": np.int32(0), "kafka_offset": np.arange(n, dtype="int64"),
    })
    writer = HourWriter(lake, "predictions", window, schema)
    writer.add(pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False), pa.table({}),
               df["served_at"].astype("int64").to_numpy())
    writer.publish({"topic": "predictions", "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
                    "status": "offloaded", "validation": None})


def write_loop(lake: Lake) -> None:
    """Six hours of a loop: calm, drift builds up, a data retrain, one suppressed, v4 promoted, rolled back."""
    records = [decision(1), decision(2, share=0.4), decision(3, share=0.5),
               decision(4, "data", retrain=True, share=0.6, auc=0.82),
               decision(5, "data", suppressed_by="cooldown", share=0.6, auc=None),
               decision(6, version="4", auc=0.92)]
    for record in records:
        lake.write_text(f"decisions/{record['run_id']}.json", json.dumps(record))
        lake.write_text(record["drift"]["report"], "<html>evidently</html>")
    trail = [audit(0, "promotion", None, "3"), audit(4.5, "promotion", "3", "4"), audit(6.5, "rollback", "4", "3")]
    lake.write_text("registry/audit.jsonl", "".join(json.dumps(r) + "\n" for r in trail))
    for hour, versions in [(0, {"3": 40}), (3, {"3": 50}), (4, {"3": 20, "4": 30}), (5, {"4": 60})]:
        write_predictions(lake, hour, versions)


def count(page: str, cls: str) -> int:
    return len(re.findall(f'class="{cls}"', page))


def test_the_page_draws_every_series_of_the_loop(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    write_loop(lake)
    result = build_loop_report(lake, "machine-failure", {"airflow": "http://127.0.0.1:8080", "mlflow": "http://127.0.0.1:5000"})
    page = lake.read_text("reports/loop/index.html")
    assert result["key"] == "reports/loop/index.html" and result["url"] == lake.url("reports/loop/index.html")
    assert result["figures"] == ["live_auc", "label_coverage", "drift_share", "decisions", "serving", "events"]
    assert count(page, "live-point") == 5  # one window had no live AUC
    assert count(page, "drift-point") == 6 and count(page, "coverage-point") == 6
    assert count(page, "decision quiet") == 4 and count(page, "decision retrain") == 1
    assert count(page, "decision suppressed") == 1
    assert count(page, "event retrain") == 1 and count(page, "event promotion") == 2 and count(page, "event rollback") == 1
    assert count(page, "serving") == 5  # one bar slice per hour and version
    assert "v3 (110 events)" in page and "v4 (90 events)" in page
    assert count(page, "guide") == 6 * 3  # each champion move marked on every chart
    rows = re.findall(r'<tr class="audit"><td>([^<]+)</td><td>([^<]+)</td>', page)
    assert [r[1] for r in rows] == ["rollback", "promotion", "promotion"]  # newest first
    assert 'href="../drift/monitor-20261122T0600/report.html"' in page
    assert 'href="http://127.0.0.1:8080"' in page and 'href="http://127.0.0.1:5000"' in page
    assert "<script" not in page and "http://cdn" not in page and len(page) < 60_000


def test_hostile_text_is_escaped_and_unsafe_links_are_not_links(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    evil = '<script>alert("x")</script>'
    record = decision(1, "metric", retrain=True, reason=evil)
    record["links"] = {"report": "javascript:alert(1)", "mlflow_run": "javascript:alert(2)"}
    record["drift"]["drifted"] = ['"><img src=x onerror=alert(3)>']
    lake.write_text("decisions/x.json", json.dumps(record))
    lake.write_text("registry/audit.jsonl", json.dumps(audit(1, "promotion", None, "<b>7</b>", reason=evil)) + "\n")
    write_predictions(lake, 1, {'<img src=x onerror=alert(4)>': 3})
    build_loop_report(lake, "machine-failure", {"airflow": "javascript:alert(5)"})
    page = lake.read_text("reports/loop/index.html")
    assert "<script>" not in page and "<img" not in page and "<b>7" not in page
    assert 'href="javascript' not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(4)&gt;" in page and "v&lt;b&gt;7&lt;/b&gt;" in page


def test_an_empty_lake_renders_notes_instead_of_charts(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    result = build_loop_report(lake, "machine-failure")
    page = lake.read_text(result["key"])
    assert result["figures"] == [] and "<svg" not in page
    for note in ("No decisions yet", "No predictions offloaded yet", "No retrains, promotions or rollbacks yet",
                 "No drift report yet", "No promotions or rollbacks yet"):
        assert note in page


def test_minimal_decisions_and_broken_records_still_render(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    for hour in (1, 2):
        end = START + timedelta(hours=hour)
        lake.write_text(f"decisions/monitor-{hour}.json",
                        json.dumps({"run_id": f"monitor-{hour}", "kind": "none", "evidence": {"now": end.isoformat()}}))
    lake.write_text("decisions/monitor-3.json", json.dumps({  # nothing served in the window: no coverage
        "run_id": "monitor-3", "kind": "none", "evidence": {"now": (START + timedelta(hours=3)).isoformat()},
        "live": {"roc_auc": None, "predictions": 0, "labels": 0, "mature": 0, "coverage": 0.0, "judged": False}}))
    lake.write_text("decisions/broken.json", "{not json")
    lake.write_text("decisions/old.json", json.dumps({"run_id": "old", "kind": "none"}))
    lake.write_text("registry/audit.jsonl", json.dumps(audit(1, "promotion", None, "1")) + "\nnot json\n")
    result = build_loop_report(lake, "machine-failure")
    page = lake.read_text(result["key"])
    assert result["figures"] == ["decisions", "events"] and result["problems"] == 3
    assert count(page, "decision quiet") == 3 and count(page, "audit") == 1
    assert "No live AUC yet" in page and "No drift share yet" in page and "No label coverage yet" in page
    assert "decisions/broken.json: left out" in page and "decisions/old.json: left out" in page
    assert "registry/audit.jsonl line 2: left out" in page


def test_only_the_model_s_decisions_and_manifested_hours_count_and_since_cuts_the_past(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    write_predictions(lake, 1, {"1": 5})
    write_predictions(lake, 2, {"9": 7}, model="another-model")
    write_predictions(lake, 3, {"2": 4})
    raw = raw_prefix("predictions", Window.hour(START + timedelta(hours=3)))
    lake.delete(f"{raw}/_manifest.json")  # an hour still being offloaded
    lake.write_text("decisions/a.json", json.dumps(decision(1)))
    lake.write_text("decisions/b.json", json.dumps(decision(5)))
    lake.write_text("decisions/c.json", json.dumps({**decision(2), "model": "another-model"}))
    page = lake.read_text(build_loop_report(lake, "machine-failure")["key"])
    assert "v1 (5 events)" in page and "v2" not in page and "v9" not in page
    assert count(page, "decision quiet") == 2
    page = lake.read_text(build_loop_report(lake, "machine-failure", since=START + timedelta(hours=3))["key"])
    assert count(page, "decision quiet") == 1 and "No predictions offloaded yet" in page


def test_the_report_reads_the_older_trail_and_the_records_the_registry_writes(tmp_path):
    """A lake with the single-file trail of earlier moves, and a move recorded the way set_champion does."""
    from ml.audit import write_record

    lake = Lake(str(tmp_path / "lake"))
    write_loop(lake)
    write_record(lake, audit(7, "promotion", "3", "5", reason="recorded as its own object"))
    page = lake.read_text(build_loop_report(lake, "machine-failure")["key"])
    assert count(page, "audit") == 4 and "recorded as its own object" in page


@pytest.mark.parametrize("args, flag", [
    (["--lake", "http://example.com/lake"], "--lake"),
    (["--lake", "s3://"], "--lake"),
    (["--out-key", "../escape.html"], "--out-key"),
    (["--out-key", "reports/loop/index.txt"], "--out-key"),
    (["--days", "0"], "--days"),
    (["--airflow-url", "javascript:alert(1)"], "--airflow-url"),
    (["--mlflow-url", "127.0.0.1:5000"], "--mlflow-url"),
])
def test_bad_arguments_name_the_flag(args, flag, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert f"{flag}:" in capsys.readouterr().err


def test_the_console_script_writes_the_page_and_prints_where(tmp_path, capsys):
    assert main(["--lake", str(tmp_path / "missing")]) == 2
    assert "--lake: no such folder" in capsys.readouterr().err
    lake = Lake(str(tmp_path / "lake"))
    write_loop(lake)
    assert main(["--lake", str(tmp_path / "lake"), "--out-key", "/reports/custom.html",
                 "--airflow-url", "http://127.0.0.1:8080"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["key"] == "reports/custom.html" and len(result["figures"]) == 6
    assert 'href="http://127.0.0.1:8080"' in lake.read_text("reports/custom.html")
