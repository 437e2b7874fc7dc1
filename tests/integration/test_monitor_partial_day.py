"""A champion that learned part of a day, monitored against the real lake and the real MLflow server.

A regime-style champion learns from 6 hours, so its reference holds 6 hours of the day. In lake A, 24
quiet hours follow: the daily cycle must not read as drift (no `data` decision); windows holding an hour
of the day the reference lacks are recorded as not judged until the champion has served that hour with
healthy live metrics, and then the hour is in its reference. Lake B holds the same readings with a
covariate shift starting in the hours the training covered: the drift check or the live metrics must
still ask for a retrain within 3 windows plus the label delay.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import datetime, timedelta

import pytest
from mlflow import MlflowClient

from ml.lake import Lake
from ml.lake.layout import reference_index_key
from ml.monitor import monitor_hours
from ml.monitor.reference import TRAINING, hour_label
from ml.policy import DATA, METRIC, NONE
from ml.registry import APPROVED, set_champion
from ml.registry.states import MANUAL
from ml.registry.trust import judge_version, record_approval
from ml.settings import load_settings
from ml.simulate import CovariateDrift
from ml.train import RetrainRequest, register_challenger, train_candidate
from ml.train.fit import DEFAULTS
from tests.integration.monitor_data import (copy_prefix, simulate, timeline, write_outcomes, write_predictions,
                                            write_telemetry)
from tests.integration.training_data import CONTRACT

TRAIN, QUIET, AFTER = 6, 24, 3  # hours
HOURS = timeline(TRAIN + QUIET + AFTER)
TRAIN_HOURS, QUIET_HOURS = HOURS[:TRAIN], HOURS[TRAIN:TRAIN + QUIET]
ONSET = QUIET_HOURS[18].start  # the first hour of the day the training covered, a day later
DELAY = timedelta(hours=math.ceil(CONTRACT.label.max_delay_minutes / 60))


@pytest.fixture(scope="module")
def history(tmp_path_factory, mlflow_uri):
    """Lake A (the training hours, then 24 quiet hours), lake B (the same, with a covariate shift from
    ONSET, and 3 hours more) and the champion, trained on the first 6 hours of A."""
    model_name = f"test-partial-day-{uuid.uuid4().hex[:8]}"
    root = tmp_path_factory.mktemp("partial-day")
    lake_a, lake_b = Lake(str(root / "a")), Lake(str(root / "b"))
    quiet = simulate(HOURS[:TRAIN + QUIET])
    write_telemetry(lake_a, HOURS[:TRAIN + QUIET], quiet)
    write_outcomes(lake_a, quiet)
    settings = load_settings(lake_uri=lake_a.uri, model_name=model_name, retrain_search_seconds=2,
                             retrain_max_rounds=80)
    request = RetrainRequest("data:regime", TRAIN_HOURS[0].start, TRAIN_HOURS[-1].end,
                             TRAIN_HOURS[-1].end + timedelta(hours=6), hyperparameters=dict(DEFAULTS))
    summary = train_candidate(lake_a, CONTRACT, settings.retrain, settings.registry, request)
    version = register_challenger(mlflow_uri, model_name, summary.run, summary.tags)
    judge_version(mlflow_uri, lake_a, model_name, version, settings.gates, champion_version=None)
    record_approval(lake_a, model_name, version, APPROVED, "test", MANUAL, "first model")
    set_champion(MlflowClient(mlflow_uri), model_name, version, actor="test", reason="first model", lake=lake_a)
    write_predictions(lake_a, QUIET_HOURS, quiet, mlflow_uri, model_name, version)

    shifted = simulate(HOURS, (CovariateDrift(start_ms=int(ONSET.timestamp() * 1000)),))
    before = shifted[shifted["ts"] < ONSET].reset_index(drop=True)
    assert before["event_id"].equals(quiet[quiet["ts"] < ONSET]["event_id"].reset_index(drop=True))
    write_telemetry(lake_b, HOURS, shifted)
    write_outcomes(lake_b, shifted)
    copy_prefix(lake_a, lake_b, "registry/verdicts")
    write_predictions(lake_b, HOURS[TRAIN:], shifted, mlflow_uri, model_name, version)
    return {"a": lake_a, "b": lake_b, "model": model_name, "version": version}


def test_a_champion_trained_on_6_hours_sees_no_drift_in_a_quiet_day_and_learns_the_hours_it_served(history):
    lake, name = history["a"], history["model"]
    settings = load_settings(lake_uri=lake.uri, model_name=name)
    runs = monitor_hours(lake, CONTRACT, settings.monitor, [w.end for w in QUIET_HOURS])
    assert len(runs) == 24
    assert not [o for o in runs if o["decision"]["kind"] == DATA], [o["decision"]["reason"] for o in runs]
    trained = {w.start.hour for w in TRAIN_HOURS}
    learned: set[int] = set()
    for o in runs:
        end = datetime.fromisoformat(o["window"]["end"])
        window = {(end - timedelta(hours=b)).hour for b in range(1, settings.drift_window_hours + 1)}
        missing = sorted(window - trained - learned)
        record = json.loads(lake.read_text(o["key"]))
        if missing:  # not judged, and said why, in the record too
            reason = f"no reference for hours of day {', '.join(f'{h:02d}' for h in missing)} yet"
            assert o["drift"] == record["drift"] == {"judged": False, "reason": reason}
            assert o["decision"]["evidence"]["drift_shares"] == []
        else:
            assert o["drift"]["judged"] and o["drift"]["drift_share"] is not None, o["drift"]
        added = o["window"].get("reference_added") or []
        if added:
            assert o["live"]["judged"], o["live"]
        learned |= {datetime.strptime(h, "%Y-%m-%dT%H").hour for h in added}
    # the first hour served leaves the window before the first live metrics are judged (the labels' delay):
    # it is learned when it is served again, the next day; every other hour of the day is learned now
    first = QUIET_HOURS[0].start.hour
    assert learned == set(range(24)) - trained - {first}
    later = [o for o in runs if datetime.fromisoformat(o["window"]["end"]) > QUIET_HOURS[17].end]
    assert len(later) == 6 and all(o["drift"]["judged"] for o in later)
    assert max(o["drift"]["drift_share"] for o in later) < settings.drift_share_threshold
    index = json.loads(lake.read_text(reference_index_key(name, history["version"])))
    served = {f"{w.start.hour:02d}": hour_label(w.start) for w in QUIET_HOURS[1:18]}
    assert index["hours"] == {**served, **{f"{h:02d}": TRAINING for h in trained}}
    assert index["version"] == str(history["version"]) and 1500 <= index["rows_per_hour"] <= 1800


def test_a_covariate_shift_in_the_hours_the_training_covered_is_still_caught(history):
    lake, name = history["b"], history["model"]
    settings = load_settings(lake_uri=lake.uri, model_name=name)
    runs = monitor_hours(lake, CONTRACT, settings.monitor, [w.end for w in HOURS[TRAIN:]])
    asked = [o for o in runs if o["decision"]["retrain"]]
    assert asked, [o["decision"]["reason"] for o in runs]
    first = asked[0]
    end = datetime.fromisoformat(first["window"]["end"])
    print(f"\nshift from {ONSET:%H:%M}: {first['decision']['kind']} retrain asked by the window ending {end:%H:%M}: "
          f"{first['decision']['reason']}")
    assert first["decision"]["kind"] in (DATA, METRIC), first["decision"]
    before = [o for o in runs if datetime.fromisoformat(o["window"]["end"]) <= ONSET]
    assert not [o for o in before if o["decision"]["kind"] != NONE], [o["decision"]["reason"] for o in before]
    assert ONSET < end <= ONSET + settings.drift_windows_k * timedelta(hours=1) + DELAY, (end, first["decision"])
