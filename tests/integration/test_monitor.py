"""Monitoring on simulated history, against the real lake and the real MLflow server.

One day trains the champion; 48 hourly windows of normal data follow (no trigger may fire: the count
of false alarms is printed), then a covariate shift (a data decision within 3 hourly runs of its onset,
then it waits for its data and no other retrain is asked for). A second lake holds the same telemetry and predictions with a concept drift
in the outcomes only (a metric decision, once the labels have matured, and no data decision). An old
champion gives a schedule decision; the DAG turns a decision into a retrain request and one alert.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import datetime, timedelta

import pytest
from mlflow import MlflowClient

from ml.lake import Lake
from ml.monitor import live_window, monitor_hour, monitor_hours
from ml.policy import DATA, METRIC, NONE, PENDING, SCHEDULE
from ml.registry import APPROVED, set_champion
from ml.registry.approval import MANUAL
from ml.registry.trust import judge_version, record_approval
from ml.settings import load_settings
from ml.simulate import ConceptDrift, CovariateDrift
from ml.train import RetrainRequest, register_challenger, train_candidate
from ml.train.fit import DEFAULTS
from tests.integration.alert_support import use_webhook, webhook  # noqa: F401
from tests.integration.monitor_data import (copy_prefix, simulate, timeline, write_outcomes, write_predictions,
                                            write_telemetry)
from tests.integration.training_data import CONTRACT, airflow_db, run_dag, xcom  # noqa: F401

TRAIN, QUIET, DRIFTED = 24, 53, 9  # hours; 53 quiet hours give 48 windows of 6 hours
HOURS = timeline(TRAIN + QUIET + DRIFTED)
TRAIN_HOURS, QUIET_HOURS, DRIFT_HOURS = HOURS[:TRAIN], HOURS[TRAIN:TRAIN + QUIET], HOURS[TRAIN + QUIET:]
ONSET = DRIFT_HOURS[0].start
CONCEPT_ONSET = QUIET_HOURS[20].start


@pytest.fixture(scope="module")
def model_name():
    return f"test-monitor-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def history(tmp_path_factory, mlflow_uri, model_name):
    """Lake A (quiet, then covariate shift), lake B (the same readings, concept drift in the truth) and
    the champion, trained on the first day of A."""
    root = tmp_path_factory.mktemp("monitor")
    lake_a, lake_b = Lake(str(root / "a")), Lake(str(root / "b"))
    events = simulate(HOURS, (CovariateDrift(start_ms=int(ONSET.timestamp() * 1000)),))
    write_telemetry(lake_a, HOURS, events)
    write_outcomes(lake_a, events)
    settings = load_settings(lake_uri=lake_a.uri, model_name=model_name, retrain_search_seconds=2,
                             retrain_max_rounds=80)
    # fixed hyperparameters, so the champion is the same model on every machine: a search bounded by
    # time tries more of them on a faster one, and the margins below are a model's, not a host's
    request = RetrainRequest("manual:test", TRAIN_HOURS[0].start, TRAIN_HOURS[-1].end,
                             TRAIN_HOURS[-1].end + timedelta(hours=6), hyperparameters=dict(DEFAULTS))
    summary = train_candidate(lake_a, CONTRACT, settings.retrain, settings.registry, request)
    version = register_challenger(mlflow_uri, model_name, summary.run, summary.tags)
    judge_version(mlflow_uri, lake_a, model_name, version, settings.gates, champion_version=None)  # as promote_model does
    record_approval(lake_a, model_name, version, APPROVED, "test", MANUAL, "first model")
    set_champion(MlflowClient(mlflow_uri), model_name, version, actor="test", reason="first model", lake=lake_a)
    scored = HOURS[TRAIN:]
    write_predictions(lake_a, scored, events, mlflow_uri, model_name, version)

    concept = simulate(HOURS[:TRAIN + QUIET], (ConceptDrift(start_ms=int(CONCEPT_ONSET.timestamp() * 1000)),))
    assert concept["event_id"].equals(events["event_id"].iloc[:len(concept)].reset_index(drop=True))
    for prefix in ("raw/telemetry", "validation/telemetry", "raw/predictions", "registry/verdicts"):
        copy_prefix(lake_a, lake_b, prefix)
    write_outcomes(lake_b, concept)
    return {"a": lake_a, "b": lake_b, "version": version, "holdout_auc": summary.metrics["holdout_roc_auc"]}


def settings_for(lake: Lake, model_name: str, **overrides):
    return load_settings(lake_uri=lake.uri, model_name=model_name, **overrides)


def test_quiet_hours_trigger_nothing_and_a_covariate_shift_asks_for_a_retrain_within_three_runs(history, model_name):
    lake, settings = history["a"], settings_for(history["a"], model_name)
    quiet = monitor_hours(lake, CONTRACT, settings.monitor, [w.end for w in QUIET_HOURS[5:]])
    assert len(quiet) == 48
    alarms = [o for o in quiet if o["decision"]["kind"] != NONE]
    drifted_windows = sum(o["drift"]["window_drifted"] for o in quiet)
    judged = [o["live"]["roc_auc"] for o in quiet if o["live"]["judged"]]
    print(f"\n48 quiet windows: {len(alarms)} false alarms, {drifted_windows} single windows at or over the drift "
          f"threshold, live AUC judged in {len(judged)} (min {min(judged):.3f})")
    assert not alarms, [o["decision"]["reason"] for o in alarms]
    assert len(judged) >= 30 and min(judged) > history["holdout_auc"] - settings.live_auc_drop_margin
    # estimated before the labels, in every window; checked against the realized AUC once they matured
    assert all(o["estimated"]["recent"]["rows"] > 0 for o in quiet)
    checked = [o["estimated"]["matured"]["gap"] for o in quiet if o["live"]["judged"]]
    print(f"estimated vs realized AUC on {len(checked)} matured quiet windows: largest gap {max(checked):.4f}")
    assert len(checked) == len(judged) and not any(o["estimated"]["unreliable"] for o in quiet)

    runs = monitor_hours(lake, CONTRACT, settings.monitor, [w.end for w in DRIFT_HOURS])
    kinds = [o["decision"]["kind"] for o in runs]
    first = next(i for i, o in enumerate(runs) if o["decision"]["retrain"])
    assert first < 3 and kinds[first] == DATA, kinds
    asked = runs[first]
    assert "consecutive windows" in asked["decision"]["reason"]
    # decided on every row of the window's hours, from their summaries: these hours were written without
    # one (as before summaries existed), so each was summarized once, on its first read, and stored
    span = (datetime.fromisoformat(asked["window"]["start"]), datetime.fromisoformat(asked["window"]["end"]))
    assert asked["drift"]["basis"] == "sketch" and asked["drift"]["current_rows"] == sum(
        json.loads(lake.read_text(f"raw/telemetry/{w.partition_path}/_manifest.json"))["rows"]
        for w in HOURS if span[0] <= w.start < span[1])
    summarized = {k.rsplit("/", 1)[0] for k in lake.list("raw/telemetry") if "/_summary." in k}
    assert summarized >= {f"raw/telemetry/{w.partition_path}" for w in QUIET_HOURS + DRIFT_HOURS}
    assert {"air_temperature_k", "rotational_speed_rpm"} <= set(asked["drift"]["drifted"])
    # the evidence is in the lake and in MLflow
    record = json.loads(lake.read_text(asked["key"]))
    assert record["kind"] == DATA and record["retrain"] and record["evidence"]["drift_shares"][-1] >= 0.3
    assert lake.exists(asked["drift"]["report"]) and lake.read_text(asked["drift"]["report"]).lstrip().startswith("<")
    run_id = asked["links"]["mlflow_run"].rsplit("/", 1)[-1]
    run = MlflowClient(settings.mlflow_tracking_uri).get_run(run_id)
    assert run.data.tags["decision"] == DATA and run.data.metrics["drift_share"] >= 0.3
    arts = {a.path for a in MlflowClient(settings.mlflow_tracking_uri).list_artifacts(run_id, "drift")}
    assert {"drift/report.html", "drift/summary.json"} <= arts

    # the retrain learns from where the change was first seen, and waits for those hours' labels; the
    # drift goes on meanwhile, and no other retrain is asked for this champion while that one waits
    since = datetime.fromisoformat(record["regime_since"])
    assert ONSET <= since < datetime.fromisoformat(asked["window"]["end"]), record["regime_since"]
    delay = timedelta(hours=math.ceil(CONTRACT.label.max_delay_minutes / 60))
    until = since + settings.retrain_regime_hours * timedelta(hours=1) + delay + timedelta(hours=1)
    later = runs[first + 1:]
    assert len(later) >= settings.retrain_cooldown_hours
    for o in later:
        assert o["decision"]["kind"] != NONE, o["decision"]
        assert datetime.fromisoformat(o["window"]["end"]) < until
        assert o["decision"]["suppressed_by"] == PENDING and not o["decision"]["retrain"], o["decision"]
        assert o["decision"]["evidence"]["pending_until"] == until.isoformat()


def test_a_concept_drift_asks_for_a_retrain_on_the_metric_once_labels_mature(history, model_name):
    lake, settings = history["b"], settings_for(history["b"], model_name)
    ends = [w.end for w in QUIET_HOURS[24:37]]  # from 5 hours after the onset (labels of before) to 17 after
    runs = monitor_hours(lake, CONTRACT, settings.monitor, ends)
    first = next(o for o in runs if o["decision"]["retrain"])
    assert first["decision"]["kind"] == METRIC, first["decision"]
    assert not any(o["decision"]["kind"] == DATA for o in runs)
    end = first["decision"]["evidence"]["now"]
    window = live_window(CONTRACT, datetime.fromisoformat(end), settings.live_window_hours)
    assert window.end > CONCEPT_ONSET  # judged on labels of hours after the onset, and only once they matured
    assert first["live"]["judged"] and first["live"]["roc_auc"] < history["holdout_auc"] - settings.live_auc_drop_margin
    before = [o for o in runs if o["live"]["judged"] and datetime.fromisoformat(o["live"]["end"]) <= CONCEPT_ONSET]
    assert before and all(o["live"]["roc_auc"] > first["live"]["roc_auc"] for o in before)
    # the estimate cannot see a concept drift: it parts from the realized AUC, within the labels' delay
    # and one live window of the onset, and no later than the metric decision
    flagged = next(o for o in runs if o["estimated"]["unreliable"])
    flagged_at = datetime.fromisoformat(flagged["window"]["end"])
    assert flagged_at <= datetime.fromisoformat(end), (flagged["estimated"], first["estimated"])
    assert flagged_at - CONCEPT_ONSET <= timedelta(minutes=CONTRACT.label.max_delay_minutes) + timedelta(
        hours=settings.live_window_hours)
    assert not any(o["estimated"]["unreliable"] for o in before)


def test_an_old_champion_asks_for_a_scheduled_retrain(history, model_name):
    lake = history["a"]
    settings = settings_for(lake, model_name, max_model_age_hours=24)
    outcome = monitor_hour(lake, CONTRACT, settings.monitor, QUIET_HOURS[30].end)
    assert outcome["decision"]["kind"] == SCHEDULE and outcome["decision"]["retrain"]
    assert "model age" in outcome["decision"]["reason"]


def test_the_dag_requests_a_retrain_and_alerts_once(history, model_name, monkeypatch, webhook, airflow_db, tmp_path):
    lake = Lake(str(history["a"].root.parent / "dag"))
    for prefix in ("raw", "validation", "decisions", "registry/verdicts"):
        copy_prefix(history["a"], lake, prefix)
    for var, value in {"LAKE_URI": lake.uri, "MODEL_NAME": model_name}.items():
        monkeypatch.setenv(f"CONTINUUM_{var}", value)
    use_webhook(monkeypatch, webhook.url)
    monkeypatch.setenv("CONTINUUM_ALERT_STATE_PATH", str(tmp_path / "alerts.json"))
    end = DRIFT_HOURS[2].end
    for key in [k for k in lake.list("decisions/") if k >= f"decisions/monitor-{DRIFT_HOURS[0].end:%Y%m%dT%H%M}"]:
        lake.delete(key)  # the drifted windows have not been monitored in this lake yet
    run, states = run_dag("monitor_model", {"end": end.isoformat(), "hours": 3})
    assert states == {"plan_windows": "success", "evaluate_windows": "success", "request_retrain": "success",
                      "roll_back_champion": "skipped", "update_loop_report": "success"}  # no champion on probation
    assert "monitor-" in lake.read_text("reports/loop/index.html")
    request = xcom(run, "request_retrain")
    assert request["reason"] == DATA and request["links"]["report"] and request["links"]["mlflow_run"]
    alerts = [b["json"] for b in webhook.bodies if b["json"].get("kind") == "retrain_decision"]
    assert len(alerts) == 1 and "drift share" in alerts[0]["reason"] and alerts[0]["evidence"]["drift report"]
    assert alerts[0]["evidence"]["loop report"].endswith("reports/loop/index.html")
