"""Batch scoring against the real MLflow server, the real sidecar on the real broker, a real lake (on S3
too in test_analysts) and the real Airflow task runner: same scores as the stream, identical reruns,
a summary that adds up, and the DAG scoring the days it is given."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import mlflow
import numpy as np
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient
from sklearn.metrics import roc_auc_score

from ml.batch import BatchError, batch_day, load_model
from ml.lake import Lake
from ml.lake.layout import audit_prefix, batch_predictions_key, verdict_key
from ml.lake.window import Window
from ml.registry import set_champion
from ml.serving.model import ModelRefused
from ml.simulate import SimConfig, Simulator
from tests.browser import lake_file
from tests.integration.serving_models import new_model, register, train_booster
from tests.integration.serving_process import SidecarProcess, promote, serving_env
from tests.integration.serving_topics import produce, read_topic, values
from tests.integration.training_data import CONTRACT, airflow_db, run_dag, write_hours  # noqa: F401

pytestmark = pytest.mark.integration

SEED, RATE, THRESHOLD = 5, 0.5, 0.1  # about 1,800 events an hour
# a whole past day: every outcome has been observed and the DAG's wait for the offload is over
DAY = (datetime.now(timezone.utc) - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
HOURS = [Window.hour(DAY + timedelta(hours=h)) for h in (10, 11)]
COLUMNS = ["event_id", "device_id", "ts", "score", "decision", "model_name", "model_version"]


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory) -> Lake:
    """The lake this module's model verdicts are recorded in."""
    return Lake(str(tmp_path_factory.mktemp("verdicts")))


@pytest.fixture(scope="module")
def model(mlflow_uri, verdicts):
    """A registered version of a model of this module's own, judged, approved and made champion as
    promote_model does, loaded as the sidecar loads it."""
    mlflow.set_tracking_uri(mlflow_uri)
    client = MlflowClient(mlflow_uri)
    name = new_model(client)
    version = register(client, name, train_booster(seed=2), threshold=THRESHOLD, lake=verdicts)
    set_champion(client, name, version, "test", "first model", verdicts)
    return load_model(mlflow_uri, CONTRACT, name, version, verdicts)


def test_batch_scoring_refuses_a_version_that_was_not_judged_or_not_approved(mlflow_uri, verdicts):
    mlflow.set_tracking_uri(mlflow_uri)  # the runs that register the versions go to the stack's server
    client = MlflowClient(mlflow_uri)
    name = new_model(client)
    unjudged = register(client, name, train_booster(seed=3))
    pending = register(client, name, train_booster(seed=4), lake=verdicts, approve=False)
    with pytest.raises(ModelRefused, match=rf"v{unjudged} has no recorded verdict"):
        load_model(mlflow_uri, CONTRACT, name, unjudged, verdicts)
    with pytest.raises(ModelRefused, match=rf"v{pending} passed its gates but is not approved"):
        load_model(mlflow_uri, CONTRACT, name, pending, verdicts)


def read_predictions(lake: Lake, version: str, day) -> tuple[bytes, "pq.Table"]:
    data = lake.read_bytes(batch_predictions_key(version, day))
    return data, pq.read_table(io.BytesIO(data))


def test_batch_scores_equal_the_sidecars_for_the_same_events(topic_factory, settings, mlflow_uri, tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    write_hours(lake, HOURS, seed=SEED, rate=RATE)
    ctx = serving_env(topic_factory, settings)
    env, client, bootstrap = ctx["env"], ctx["client"], ctx["bootstrap"]
    version = register(client, ctx["name"], train_booster(seed=2), threshold=THRESHOLD, lake=ctx["lake"])
    promote(env, client, version)
    # the very events the lake holds, as the machines sent them
    sim = Simulator(CONTRACT, SimConfig(devices=40, rate=RATE, seed=SEED))
    records = [(k, v, ts) for batch in sim.replay(HOURS[0].start_ms, HOURS[-1].end_ms) if batch.topic == "telemetry"
               for k, v, ts in zip(batch.keys, batch.values, batch.timestamps)]
    produce(bootstrap, env["CONTINUUM_TOPIC_TELEMETRY"], records)
    sidecar = SidecarProcess(env, tmp_path / "sidecar.log").start()
    try:
        assert sidecar.wait_health()["champion"] == version
        served = values(read_topic(bootstrap, env["CONTINUUM_TOPIC_PREDICTIONS"],
                                   until=lambda rows: len(rows) >= len(records)))
        assert sidecar.terminate() == 0, sidecar.output()
    finally:
        sidecar.close()

    summary = batch_day(lake, CONTRACT, load_model(mlflow_uri, CONTRACT, ctx["name"], version, ctx["lake"]),
                        DAY.date())
    _, table = read_predictions(lake, version, DAY.date())
    batch = {row["event_id"]: row for row in table.to_pylist()}
    stream = {p["event_id"]: p for p in served}
    assert len(batch) == len(stream) == len(records) == summary["events"]
    assert batch.keys() == stream.keys()
    ids = sorted(batch)
    np.testing.assert_array_equal([batch[i]["score"] for i in ids], [stream[i]["score"] for i in ids])
    assert [batch[i]["decision"] for i in ids] == [stream[i]["decision"] for i in ids]
    assert {"alert", "normal"} == {p["decision"] for p in served}
    assert {r["model_version"] for r in batch.values()} == {p["model_version"] for p in served} == {version}


def test_a_rerun_rewrites_identical_files_and_the_summary_adds_up(model, tmp_path, page_in_browser):
    lake = Lake(str(tmp_path / "lake"))  # on S3 too in test_analysts
    events = write_hours(lake, HOURS, seed=SEED + 1, rate=RATE)
    unchecked = Window.hour(DAY + timedelta(hours=20))  # offloaded, never validated: not scored
    write_hours(lake, [unchecked], seed=SEED + 2, rate=RATE, validate=False)
    summary = batch_day(lake, CONTRACT, model, DAY.date())
    first, table = read_predictions(lake, model.version, DAY.date())
    again = batch_day(lake, CONTRACT, model, DAY.date())
    assert read_predictions(lake, model.version, DAY.date())[0] == first, "a rerun rewrites the same bytes"
    assert {k: v for k, v in again.items() if k != "report"} == {k: v for k, v in summary.items() if k != "report"}

    assert table.column_names == COLUMNS and table.num_rows == len(events) == summary["events"]
    assert set(table.column("event_id").to_pylist()) == set(events["event_id"])
    assert table.sort_by([("ts", "ascending"), ("event_id", "ascending")]).equals(table)
    p = table.column("score").to_numpy()
    decisions = np.array(table.column("decision").to_pylist())
    assert (decisions == np.where(p >= THRESHOLD, "alert", "normal")).all()
    assert summary["alerts"] == int((decisions == "alert").sum()) > 0
    assert summary["alert_rate"] == pytest.approx(summary["alerts"] / len(p))
    assert summary["score"]["quantiles"]["p50"] == pytest.approx(float(np.median(p)))
    assert sum(summary["score"]["histogram"]["counts"]) == len(p) and summary["hours"]["scored"] == 2

    truth = events.set_index("event_id")["failure"].reindex(table.column("event_id").to_pylist())
    labels = summary["labels"]
    assert labels["coverage"] == 1.0 and labels["labelled"] == len(p) and labels["positives"] == int(truth.sum())
    assert labels["metrics"]["roc_auc"] == pytest.approx(roc_auc_score(truth, p))
    assert {"pr_auc", "precision", "recall"} <= labels["metrics"].keys()

    prefix = f"reports/daily/dt={DAY:%Y-%m-%d}/model={model.version}"
    written = json.loads(lake.read_text(f"{prefix}.json"))
    assert written["events"] == summary["events"] and written["labels"]["metrics"] == labels["metrics"]
    page = lake.read_text(f"{prefix}.html")
    assert f"v{model.version} on {DAY:%Y-%m-%d}" in page and "<svg" in page and "http" not in page.split("<body>")[0]
    drawn_in_a_browser(page_in_browser.open(lake_file(lake, f"{prefix}.html", tmp_path)), summary)

    empty = DAY - timedelta(days=1)
    with pytest.raises(BatchError, match=rf"no valid telemetry hours for {empty:%Y-%m-%d}.*run lake_offload"):
        batch_day(lake, CONTRACT, model, empty.date())


def drawn_in_a_browser(shown, summary: dict) -> None:
    """The daily page as Chromium lays it out: no error, a histogram bar per bin as tall as its count
    (to the SVG's tenth of a pixel) and the threshold line, all inside the chart."""
    assert shown.errors == []
    title = f"{summary['model']['name']} v{summary['model']['version']} on {summary['day']}"
    assert shown.title() == shown.texts("h1")[0] == title
    counts = summary["score"]["histogram"]["counts"]
    bars, lines = shown.marks("svg rect"), shown.marks("svg line")
    assert [int(b["tip"].rsplit(": ", 1)[1]) for b in bars] == counts and len(lines) == 1
    assert all(m["inside"] for m in bars + lines) and lines[0]["height"] > 0
    tallest = max(b["height"] for b in bars)
    assert tallest > 100 and all(abs(b["height"] - c / max(counts) * tallest) <= 0.1 for b, c in zip(bars, counts))


def test_the_dag_scores_the_days_it_is_given(airflow_db, model, verdicts, tmp_path, monkeypatch):
    lake = Lake(str(tmp_path / "lake"))
    events = write_hours(lake, HOURS, seed=SEED + 3, rate=RATE)
    # the DAG reads the version's verdict, and the move that made it champion, from the lake it scores
    for key in [verdict_key(model.name, model.version), *verdicts.list(audit_prefix())]:
        lake.write_text(key, verdicts.read_text(key))
    for var, value in {"LAKE_URI": lake.uri, "MODEL_NAME": model.name,
                       "ALERT_STATE_PATH": str(tmp_path / "alerts.json")}.items():
        monkeypatch.setenv(f"CONTINUUM_{var}", value)
    before = DAY - timedelta(days=1)  # nothing offloaded: that day alone fails
    run, _ = run_dag("batch_score", {"start": f"{before:%Y-%m-%d}", "end": f"{DAY:%Y-%m-%d}", "model": "champion"})
    states = {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
    assert states == {("plan_days", -1): "success", ("wait_for_offload", -1): "success",
                      ("resolve_model", -1): "success", ("score_day", 0): "failed", ("score_day", 1): "success"}
    _, table = read_predictions(lake, model.version, DAY.date())
    assert table.num_rows == len(events)
    summary = json.loads(lake.read_text(f"reports/daily/dt={DAY:%Y-%m-%d}/model={model.version}.json"))
    assert summary["events"] == len(events) and summary["model"]["version"] == model.version
    assert lake.exists(f"reports/daily/dt={DAY:%Y-%m-%d}/model={model.version}.html")
    assert not lake.list(f"predictions_batch/model={model.version}/dt={before:%Y-%m-%d}")
