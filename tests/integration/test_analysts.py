"""The DuckDB and pandas snippets of docs/analysts.md, run as written on a lake the product writes (the
offload's writer and manifests, validation, batch scoring), once as a local folder and once on the S3
endpoint through the offline S3 route the document gives: every documented query returns the counts
the data holds."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from ml.batch import batch_day, load_model
from ml.lake import Lake
from ml.lake.layout import batch_predictions_key
from ml.lake.window import Window
from tests.integration.conftest import S3_ENDPOINT
from tests.integration.serving_models import new_model, register, train_booster
from tests.integration.training_data import CONTRACT, _publish, write_hours

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "analysts.md"
SNIPPETS = {m.group(2): m.group(1) for m in re.finditer(r"```(?:sql|python)\n((?:--|#) name: (\w+)\n.*?)```",
                                                       DOC.read_text(), re.S)}
DOC_ROOT, DOC_S3_ROOT, DOC_ENDPOINT = ".local/lake", "continuum-lake/lake", "http://127.0.0.1:9000"
RATE = 0.5  # about 1,800 events an hour
DAY = (datetime.now(timezone.utc) - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
HOURS = [Window.hour(DAY + timedelta(hours=h)) for h in (10, 11)]


@pytest.fixture(scope="module")
def versions(mlflow_uri, tmp_path_factory):
    """Two versions of a model of this module's own, judged and approved (verdicts in a lake of their
    own), loaded as the sidecar loads them."""
    mlflow.set_tracking_uri(mlflow_uri)
    client = MlflowClient(mlflow_uri)
    name = new_model(client)
    verdicts = Lake(str(tmp_path_factory.mktemp("verdicts")))
    return [load_model(mlflow_uri, CONTRACT, name,
                       register(client, name, train_booster(seed=s), threshold=0.1, lake=verdicts), verdicts)
            for s in (3, 4)]


@pytest.fixture
def written(lake, versions):
    """Two valid telemetry hours with their outcomes (and a stale copy of a file, as a stopped rerun
    leaves it), one hour never validated, both versions' batch predictions and summaries, and the
    stream's predictions of the first hour (a few delivered twice)."""
    events = write_hours(lake, HOURS, seed=21, rate=RATE)
    manifest = json.loads(lake.read_text(f"raw/telemetry/{HOURS[0].partition_path}/_manifest.json"))
    live = manifest["files"][0]["key"]  # an old generation a stopped rerun left: no manifest names it
    lake.write_bytes(live.replace(f".{manifest['generation']}.", ".0123456789abcdef."), lake.read_bytes(live))
    write_hours(lake, [Window.hour(DAY + timedelta(hours=20))], seed=22, rate=RATE, validate=False)
    summaries = [batch_day(lake, CONTRACT, model, DAY.date()) for model in versions]
    batch = _frame(lake, batch_predictions_key(versions[0].version, DAY.date()))
    stream = batch[batch["ts"] < HOURS[0].end].copy()
    stream["served_at"] = stream["ts"] + pd.Timedelta(seconds=1)
    stream["latency_ms"] = 1000.0
    _publish(lake, "predictions", HOURS[0], pd.concat([stream, stream.iloc[:5]]), "served_at")
    return {"events": events, "summaries": summaries, "stream": stream}


def _frame(lake, key: str) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(lake.read_bytes(key))).to_pandas()


def _snippet(name: str, lake) -> str:
    text = SNIPPETS[name]
    if lake.is_s3:
        return (text.replace(DOC_ROOT, lake.uri).replace(DOC_S3_ROOT, f"{lake.bucket}/{lake.prefix}")
                .replace(DOC_ENDPOINT, S3_ENDPOINT))
    return text.replace(DOC_ROOT, str(lake.root))


def _connect(lake) -> duckdb.DuckDBPyConnection:
    if not lake.is_s3:
        return duckdb.connect()
    scope: dict = {}
    exec(_snippet("duckdb_s3", lake), scope)
    return scope["con"]


def test_the_documented_queries_and_pandas_reads_return_what_the_lake_holds(lake, written, versions):
    events, stream = written["events"], written["stream"]
    truth = events.set_index("event_id")["failure"]
    con = _connect(lake)
    con.execute(_snippet("views", lake))

    hours = con.sql(_snippet("valid_events_per_hour", lake)).fetchall()
    per_hour = events.groupby(events["ts"].dt.strftime("%H")).size()
    assert hours == [(DAY.date(), int(h), int(n)) for h, n in per_hour.items()]
    assert sum(n for *_, n in hours) == len(events), "the hour that was never validated is left out"

    rows = con.sql(_snippet("batch_vs_outcomes", lake)).fetchall()
    assert [(r[0], r[1]) for r in rows] == [(int(v.version), DAY.date()) for v in versions]
    for row, summary in zip(rows, written["summaries"]):
        _, _, n, labelled, alert_rate, caught, missed, false_alarms = row
        table = _frame(lake, batch_predictions_key(summary["model"]["version"], DAY.date()))
        alert, failed = table["decision"].eq("alert").to_numpy(), truth.reindex(table["event_id"]).to_numpy() == 1
        assert (n, labelled) == (len(events), len(events))
        assert alert_rate == pytest.approx(summary["alert_rate"])
        assert (caught, missed, false_alarms) == (int((alert & failed).sum()), int((~alert & failed).sum()),
                                                  int((alert & ~failed).sum()))
        assert caught + missed == int(truth.sum())

    assert con.sql(_snippet("stream_vs_batch", lake)).fetchall() == [(versions[0].version, len(stream), 0.0, 0)]

    daily = con.sql(_snippet("daily_summaries", lake)).fetchall()
    assert [(d.isoformat(), v) for d, v, *_ in daily] == [(f"{DAY:%Y-%m-%d}", v.version) for v in versions]
    for row, summary in zip(daily, written["summaries"]):
        assert row[2:] == (len(events), summary["alert_rate"], 1.0, summary["labels"]["metrics"]["roc_auc"])

    scope: dict = {}
    exec(_snippet("pandas_s3" if lake.is_s3 else "pandas_local", lake), scope)
    batch = scope["batch"]
    assert len(batch) == 2 * len(events)
    assert sorted(batch["model"].astype(int).unique()) == sorted(int(v.version) for v in versions)
    if not lake.is_s3:
        per_version = scope["per_version"]
        assert per_version["events"].tolist() == per_version["labelled"].tolist() == [len(events)] * 2
        assert per_version["failures"].tolist() == [int(events["failure"].sum())] * 2
        assert np.isin(batch["event_id"], events["event_id"]).all()
