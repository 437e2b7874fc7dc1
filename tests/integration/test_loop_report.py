"""The loop report on a real lake (a local folder and the S3 endpoint): decisions made by the policy,
a drift report per run, offloaded prediction and outcome hours and the audit trail of a drift-retrain-promote loop
become one page with every series, written atomically; the console script writes it too."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa

from ml.contract import load_contract
from ml.lake import Lake
from ml.contract.codec import codec_for
from ml.lake.window import Window
from ml.offload.writer import HourWriter
from ml.policy import Evidence, Policy, decide
from ml.report import build_loop_report
from ml.report.cli import main
from ml.report.figures import FIGURES
from tests.browser import lake_file

CONTRACT = load_contract("machine_telemetry")
START = datetime(2026, 11, 22, 0, 0, tzinfo=timezone.utc)
POLICY = Policy()  # drift threshold 0.3 over 3 windows, cooldown 6 h
DRIFT = [0.05, 0.1, 0.0, 0.45, 0.5, 0.6, 0.55, 0.1]  # share of each window, ending 01:00 .. 08:00
SERVING = [{"1": 200}] * 6 + [{"1": 80, "2": 120}, {"2": 200}]  # v2 promoted at 06:12
MODEL = "machine-failure"


def _predictions(lake: Lake, hour: int, versions: dict[str, int]) -> None:
    window = Window.hour(START + timedelta(hours=hour))
    schema = codec_for(CONTRACT, "predictions").output_schema
    n = sum(versions.values())
    df = pd.DataFrame({
        "event_id": [f"e-{hour}-{i}" for i in range(n)], "device_id": [f"d-{i % 11}" for i in range(n)],
        "model_name": MODEL, "model_version": [v for v, k in versions.items() for _ in range(k)],
        "score": np.random.default_rng(hour).random(n), "decision": "ok",
        "served_at": pd.date_range(window.start, periods=n, freq="10s", tz="UTC").astype("datetime64[ms, UTC]"),
        "latency_ms": 3.0, "kafka_partition": np.int32(0), "kafka_offset": np.arange(n, dtype="int64"),
    })
    writer = HourWriter(lake, "predictions", window, schema)
    writer.add(pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False), pa.table({}),
               df["served_at"].astype("int64").to_numpy())
    writer.publish({"topic": "predictions", "contract": CONTRACT.name, "schema_hash": CONTRACT.schema_hash(),
                    "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
                    "status": "offloaded", "validation": None})


def _outcomes(lake: Lake, hour: int, labels: dict[str, int]) -> None:
    """The outcomes observed in an hour (none: an hour offloaded that held no label)."""
    window = Window.hour(START + timedelta(hours=hour))
    schema = codec_for(CONTRACT, "outcomes").output_schema
    df = pd.DataFrame({"event_id": pd.Series(list(labels), dtype=str), "device_id": "d-0",
                       "failure": pd.Series(list(labels.values()), dtype="int64"),
                       "observed_at": pd.Series(pd.date_range(window.start, periods=len(labels), freq="s", tz="UTC"))
                       .astype("datetime64[ms, UTC]"), "kafka_partition": np.int32(0),
                       "kafka_offset": np.arange(len(labels), dtype="int64")})
    writer = HourWriter(lake, "outcomes", window, schema)
    writer.add(pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False), pa.table({}),
               df["observed_at"].astype("int64").to_numpy())
    writer.publish({"topic": "outcomes", "contract": CONTRACT.name, "schema_hash": CONTRACT.schema_hash(),
                    "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
                    "status": "offloaded", "validation": None})


def write_loop(lake: Lake) -> None:
    """Eight hourly windows: calm, drift from the window ending 04:00, a data retrain asked at 06:00, the
    next one held back by the cooldown, v2 promoted at 06:12, calm again by 08:00."""
    retrains: list[datetime] = []
    for hour, share in enumerate(DRIFT, start=1):
        now = START + timedelta(hours=hour)
        auc = 0.90 if hour == 7 else 0.92  # healthy throughout: the drift alone asks for the retrain
        evidence = Evidence(now=now, drift_shares=tuple(DRIFT[:hour]), live_auc=auc, live_labels=900,
                            mature_labels=650, champion_auc=0.93, model_age_hours=10.0 + hour,
                            recent_retrains=tuple(retrains))
        made = decide(evidence, POLICY)
        if made.retrain:
            retrains.append(now)
        run_id = f"monitor-{now:%Y%m%dT%H%M}"
        report = f"reports/drift/{run_id}/report.html"
        lake.write_text(report, f"<html><body>Evidently report {run_id}</body></html>")
        record = {"run_id": run_id, **made.to_dict(),
                  "window": {"start": (now - timedelta(hours=1)).isoformat(), "end": now.isoformat(), "hours": 1},
                  "champion": {"version": "1" if hour < 7 else "2", "holdout_roc_auc": 0.93},
                  "drift": {"drift_share": share, "drifted": ["temperature_c"] if share > 0.3 else [],
                            "top_features": [], "report": report, "summary": f"reports/drift/{run_id}/summary.json"},
                  "live": {"roc_auc": auc, "pr_auc": 0.3, "precision": 0.4, "recall": 0.5, "predictions": 1000,
                           "labels": 900, "mature": 650, "coverage": 0.9, "judged": True},
                  "links": {"report": report, "mlflow_run": f"http://127.0.0.1:5000/#/experiments/1/runs/{hour}"}}
        lake.write_text(f"decisions/{run_id}.json", json.dumps(record, indent=2))
    trail = [{"type": "promotion", "model": MODEL, "alias": "champion", "from": None, "to": "1", "actor": "demo",
              "at": START.isoformat(), "reason": "first champion"},
             {"type": "promotion", "model": MODEL, "alias": "champion", "from": "1", "to": "2",
              "actor": "promote_model", "at": (START + timedelta(hours=6, minutes=12)).isoformat(),
              "reason": "challenger beats champion on holdout_roc_auc by 0.0123"}]
    lake.write_text("registry/audit.jsonl", "".join(json.dumps(r) + "\n" for r in trail))
    for hour, versions in enumerate(SERVING):
        _predictions(lake, hour, versions)
        _outcomes(lake, hour + 1, {f"e-{hour}-{i}": int(i % 4 == 0) for i in range(sum(versions.values()))})
    for hour in range(len(SERVING) + 1, len(DRIFT) + 7):  # to the last window's end plus the 6 h label delay
        _outcomes(lake, hour, {})


def count(page: str, cls: str) -> int:
    return len(re.findall(f'class="{cls}"', page))


def test_the_loop_becomes_one_page_with_every_series(lake, page_in_browser, tmp_path):
    write_loop(lake)
    links = {"airflow": "http://127.0.0.1:8080", "mlflow": "http://127.0.0.1:5000"}
    result = build_loop_report(lake, MODEL, links, contract=CONTRACT)
    build_loop_report(lake, MODEL, links, contract=CONTRACT)  # a rerun replaces the page whole
    assert lake.list("reports/loop") == ["reports/loop/index.html"]
    assert result["url"] == lake.url("reports/loop/index.html")
    assert result["url"].startswith("s3://") == lake.is_s3
    assert len(result["figures"]) == 6 and result["problems"] == 0
    page = lake.read_text(result["key"])
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert count(page, "decision retrain") == 1 and count(page, "decision suppressed") == 1
    assert count(page, "decision quiet") == 6
    assert count(page, "live-point") == 8 and count(page, "drift-point") == 8
    # every window realized once its labels came: v1 served the hours to 07:00, v2 those from 06:12 on
    realized = re.findall(r'class="realized-point"[^>]*><title>[^:]+: (v\d) live AUC', page)
    assert realized.count("v1") == 7 and realized.count("v2") == 2
    assert count(page, "realized v2") == 1  # v2's realized series is drawn as a line
    assert count(page, "event promotion") == 2 and count(page, "event retrain") == 1
    assert count(page, "serving") == 9 and "v1 (1,280 events)" in page and "v2 (320 events)" in page
    rows = re.findall(r'<tr class="audit"><td>[^<]+</td><td>promotion</td><td>[^<]+</td><td>([^<]+)</td>', page)
    assert rows == ["2", "1"]  # newest first
    assert "suppressed: cooldown" in page and "drift share at or above 0.30 for 3 consecutive windows" in page
    latest = "reports/drift/monitor-20261122T0800/report.html"
    assert f'class="drift-report" href="../drift/monitor-20261122T0800/report.html">{latest}' in page
    assert lake.exists(latest)
    drawn_in_a_browser(page_in_browser.open(lake_file(lake, result["key"], tmp_path)))


def drawn_in_a_browser(shown) -> None:
    """The page as Chromium lays it out: no error, every figure's marks on screen inside their chart,
    and the live ROC AUC drawn as one series per serving version, at the monitor's run and realized."""
    assert shown.errors == []
    assert shown.title() == shown.texts("h1")[0] == f"Continuum loop report: {MODEL}"
    assert shown.texts("h2")[:len(FIGURES)] == [title for _, title, _ in FIGURES]
    for name, _, _ in FIGURES:
        marks = shown.marks(f"#{name} svg > g > *")
        assert marks and all(m["shown"] and m["inside"] for m in marks), name
    series = {m["cls"]: m for m in shown.marks("#live_auc polyline") if m["cls"] not in ("floor", "holdout")}
    assert {name: m["points"] for name, m in series.items()} == {
        "live v1": 6, "live v2": 2, "realized v1": 7, "realized v2": 2}
    assert series["live v1"]["stroke"] == series["realized v1"]["stroke"] != series["live v2"]["stroke"]
    assert series["live v2"]["stroke"] == series["realized v2"]["stroke"]
    assert all(m["width"] > 100 for m in series.values())
    dots = shown.marks("#live_auc g > circle, #live_auc g > rect")
    assert sorted((m["cls"], m["tip"].split(": ")[1].split()[0]) for m in dots) == sorted(
        [("live-point", "v1")] * 6 + [("live-point", "v2")] * 2 + [("realized-point", "v1")] * 7
        + [("realized-point", "v2")] * 2)


def test_an_empty_lake_gets_a_page_of_notes(lake):
    result = build_loop_report(lake, MODEL, key="reports/loop/empty.html")
    page = lake.read_text("reports/loop/empty.html")
    assert result["figures"] == [] and "No decisions yet" in page and "No predictions offloaded yet" in page
    assert "No promotions or rollbacks yet" in page


def test_the_console_script_writes_to_the_lake(lake, request, monkeypatch, capsys):
    if lake.is_s3:
        monkeypatch.setenv("CONTINUUM_S3_ENDPOINT_URL", request.getfixturevalue("s3_endpoint"))
    write_loop(lake)
    assert main(["--lake", lake.uri, "--out-key", "reports/loop/cli.html", "--model", MODEL]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["url"] == lake.url("reports/loop/cli.html") and len(printed["figures"]) == 6
    assert "v2 (320 events)" in lake.read_text("reports/loop/cli.html")
