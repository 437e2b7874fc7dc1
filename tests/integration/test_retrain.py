"""Retraining against the real MLflow server and a real lake: the run, its lineage, the version, the DAG."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from mlflow import MlflowClient

from ml.evaluate import score
from ml.monitor.champion import calibration as run_calibration
from ml.monitor.estimate import calibrate
from ml.lake import Lake
from ml.lake.layout import manifest_key
from ml.lake.window import Window
from ml.registry import CHALLENGER, by_alias, load_version
from ml.settings import load_settings
from ml.train import (DatasetError, build_training_set, plan_request, regime_request, register_challenger,
                      train_candidate)
from ml.train.dataset import mature_hours
from tests.integration.training_data import (CONTRACT, _publish, airflow_db, recent_hours, run_dag,  # noqa: F401
                                             write_hours, xcom)

NOW = datetime.now(timezone.utc)


@pytest.fixture
def env(mlflow_uri, training_lake, monkeypatch):
    """Settings as a deployment reads them, for a registered model (and experiment) of this test only."""
    for var, value in {"MODEL_NAME": f"test-mf-{uuid.uuid4().hex[:8]}", "LAKE_URI": training_lake.uri,
                       "RETRAIN_SEARCH_SECONDS": "2", "RETRAIN_MAX_ROUNDS": "80"}.items():
        monkeypatch.setenv(f"CONTINUUM_{var}", value)
    return load_settings()


def test_a_candidate_is_logged_with_its_lineage_and_registered_as_challenger(env, training_lake, tmp_path):
    settings = env
    summary = train_candidate(training_lake, CONTRACT, settings.retrain, settings.registry,
                              plan_request("manual:test", 1.0, NOW))
    assert summary.champion is None and summary.telemetry_hours == 3
    assert sum(summary.rows.values()) > 10_000 and summary.metrics["holdout_roc_auc"] > 0.85

    client = MlflowClient(settings.mlflow_tracking_uri)
    run = client.get_run(summary.run_id)
    assert client.get_experiment(run.info.experiment_id).name == settings.model_name
    assert run.data.params["trigger"] == "manual:test" and "max_depth" in run.data.params
    assert run.data.metrics["holdout_pr_auc"] == pytest.approx(summary.metrics["holdout_pr_auc"])
    for key in ("holdout_precision", "holdout_recall", "holdout_calibration_error", "latency_ms_per_1k", "model_bytes"):
        assert key in run.data.metrics
    dataset = run.inputs.dataset_inputs[0].dataset
    assert dataset.source and summary.data_hash.startswith(dataset.digest)
    lineage = json.loads(Path(mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="lineage.json", tracking_uri=settings.mlflow_tracking_uri)).read_text())
    for hour in lineage["hours"]:
        manifest = json.loads(training_lake.read_text(hour["key"]))
        assert hour["content_sha256"] == manifest["content_sha256"]
    assert {h["topic"] for h in lineage["hours"]} == {"telemetry", "outcomes"}
    arts = {a.path for a in client.list_artifacts(run.info.run_id)} | {
        a.path for a in client.list_artifacts(run.info.run_id, "reference")}
    assert {"feature_importance.png", "reference/reference.parquet", "lineage.json"} <= arts

    version = register_challenger(settings.mlflow_tracking_uri, settings.model_name, summary.run, summary.tags)
    assert by_alias(client, settings.model_name, CHALLENGER).version == version
    tags = client.get_model_version(settings.model_name, version).tags
    assert tags["approval"] == "pending" and tags["validation"] == "valid" and tags["threshold"] == "0.5"
    assert tags["trigger"] == "manual:test" and tags["data_hash"] == summary.data_hash
    assert tags["schema_hash"] == CONTRACT.schema_hash() and float(tags["holdout_roc_auc"]) > 0.85

    files = Path(mlflow.artifacts.download_artifacts(f"models:/{settings.model_name}/{version}", dst_path=str(tmp_path),
                                                     tracking_uri=settings.mlflow_tracking_uri))
    names = {p.name for p in files.rglob("*")}
    assert "model.ubj" in names and not any(n.endswith((".pkl", ".pickle")) for n in names)
    booster, threshold, loaded_tags = load_version(settings.mlflow_tracking_uri, settings.model_name, version)
    assert isinstance(booster, xgb.Booster) and threshold == 0.5 and loaded_tags == tags
    logged = json.loads(Path(mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="checks/holdout_scores.json",
        tracking_uri=settings.mlflow_tracking_uri)).read_text())
    rows = build_training_set(training_lake, CONTRACT, summary.request.start, summary.request.end,
                              NOW).frame.set_index("event_id")
    again = score(booster, CONTRACT, rows.loc[logged["event_id"]].reset_index())
    np.testing.assert_allclose(again, logged["score"], rtol=0, atol=1e-7)


def test_a_candidate_s_calibration_is_logged_with_its_run_for_the_monitor(env, training_lake):
    settings = env
    summary = train_candidate(training_lake, CONTRACT, settings.retrain, settings.registry,
                              plan_request("manual:test", 1.0, NOW))
    calibration = run_calibration(settings.mlflow_tracking_uri, summary.run_id)
    assert calibration["method"] == "isotonic" and calibration["rows"] == summary.rows["holdout"]
    assert 0 < calibration["positives"] < calibration["rows"] and np.all(np.diff(calibration["y"]) >= 0)
    rows = build_training_set(training_lake, CONTRACT, summary.request.start, summary.request.end, NOW).frame
    holdout = rows.iloc[-summary.rows["holdout"]:]
    booster, _, _ = load_version(settings.mlflow_tracking_uri, settings.model_name,
                                 register_challenger(settings.mlflow_tracking_uri, settings.model_name, summary.run,
                                                     summary.tags))
    p = calibrate(calibration, score(booster, CONTRACT, holdout))
    assert p.mean() == pytest.approx(holdout[CONTRACT.label.field].mean(), abs=1e-6)  # isotonic keeps the rate
    with mlflow.start_run(experiment_id=MlflowClient(settings.mlflow_tracking_uri).get_run(
            summary.run_id).info.experiment_id) as bare:  # a run from before calibrations were recorded
        pass
    assert run_calibration(settings.mlflow_tracking_uri, bare.info.run_id) is None


def test_too_few_rows_are_refused_naming_what_is_missing(env, training_lake):
    settings = env
    strict = replace(settings.retrain, min_rows=1_000_000)
    with pytest.raises(DatasetError, match=r"labelled rows in the window; at least 1000000"):
        train_candidate(training_lake, CONTRACT, strict, settings.registry, plan_request("manual:test", 1.0, NOW))
    with pytest.raises(DatasetError, match="no valid telemetry hours"):
        train_candidate(training_lake, CONTRACT, settings.retrain, settings.registry,
                        plan_request("manual:test", 1.0, NOW - timedelta(days=30)))
    assert not MlflowClient(settings.mlflow_tracking_uri).search_registered_models(f"name = '{settings.model_name}'")


def test_the_dag_trains_registers_and_announces_the_challenger(env, airflow_db):
    settings = env
    run, states = run_dag("retrain_model", {"reason": "dag-test", "window_days": 1, "max_depth": 3})
    assert run.state == "success", states
    registered = xcom(run, "register_challenger")
    assert registered["model"] == settings.model_name and registered["trigger"] == "manual:dag-test"
    client = MlflowClient(settings.mlflow_tracking_uri)
    mv = by_alias(client, settings.model_name, CHALLENGER)
    assert mv.version == registered["version"] and mv.tags["window_end"] > mv.tags["window_start"]
    assert client.get_run(mv.run_id).data.params["max_depth"] == "3"

    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        event = (session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                 .filter(AssetModel.name == "challenger", AssetEvent.source_run_id == run.run_id).one())
        assert event.extra == {"model": settings.model_name, "version": mv.version}


def test_a_drift_retrain_waits_for_the_new_regime_and_learns_from_it(env, tmp_path):
    """Three hours since the change began; labels mature once every outcome hour up to the contract's
    longest delay after an hour has been offloaded (an hour with no outcome still gets its manifest)."""
    settings = env
    lake = Lake(str(tmp_path / "lake"))
    hours = recent_hours(3, ended_hours_ago=1)
    write_hours(lake, hours, seed=5, rate=1.5)
    since = hours[0].start
    request = replace(plan_request("request:data", 7.0, NOW), regime_since=since)

    delay = timedelta(minutes=CONTRACT.label.max_delay_minutes)
    waiting, status = regime_request(lake, CONTRACT, request, 2, NOW)
    assert waiting is None and f"0 of 2 hours since {since.isoformat()}" in status, status

    empty = pd.DataFrame({"event_id": pd.Series([], dtype=str), "device_id": pd.Series([], dtype=str),
                          "failure": pd.Series([], dtype="int64"),
                          "observed_at": pd.Series([], dtype="datetime64[ms, UTC]")})
    for window in Window(since, hours[1].end + delay).hours():  # the outcome hours of the first two
        if not lake.exists(manifest_key("outcomes", window)):
            _publish(lake, "outcomes", window, empty, "observed_at")
    assert mature_hours(lake, CONTRACT, since, hours[-1].end) == [hours[0].start, hours[1].start]
    assert regime_request(lake, CONTRACT, request, 3, NOW)[0] is None  # the third hour's labels are due later

    ready, status = regime_request(lake, CONTRACT, request, 2, NOW)
    assert "2 of 2 hours" in status
    assert (ready.start, ready.end, ready.as_of) == (since, hours[1].end, NOW)
    summary = train_candidate(lake, CONTRACT, settings.retrain, settings.registry, ready)
    assert summary.telemetry_hours == 2 and summary.request.to_dict()["regime_since"] == since.isoformat()
    assert summary.tags["window_start"] == since.isoformat()

    # a calendar request, or a policy of no waiting, passes as it is
    assert regime_request(lake, CONTRACT, replace(request, regime_since=None), 2, NOW)[0].start == request.start
    assert regime_request(lake, CONTRACT, request, 0, NOW)[0] == request


def test_a_calendar_run_without_a_champion_is_skipped(env):
    from airflow.sdk.exceptions import AirflowSkipException

    from plugins.tasks.retrain import plan

    with pytest.raises(AirflowSkipException, match="no champion of .* yet"):
        plan("scheduled", {}, [])
    assert plan("manual", {"reason": "first"}, [])["trigger"] == "manual:first"
