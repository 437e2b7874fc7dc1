"""The bake window end to end on the real services: a model trained on shuffled labels (its holdout figures
injected so it passes the gates) is promoted; the sidecar shadows the champion it replaced; the monitor's
paired test on the offloaded predictions finds it worse; monitor_model's rollback task moves it back
(audit record, control message, alert with the evidence) and marks it, while events keep flowing. Every
event is scored exactly once, and the marked model is refused by the gates."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import numpy as np
import orjson
import pandas as pd
import pytest

from ml.alerts import ROLLED_BACK, read_alert_log
from ml.audit import read_records
from ml.clock import set_clock
from ml.contract import model_frame
from ml.lake.window import HOUR, Window
from ml.monitor.bake import SHADOW, champion_bake
from ml.offload.run import offload_hour, window_consumer
from ml.registry.trust import judge_version
from ml.settings import BakeSettings, load_settings
from ml.simulate import SimConfig, Simulator
from tests.integration.serving_models import CONTRACT, START_MS, register, train_booster
from tests.integration.serving_process import SidecarProcess, promote, serving_env
from tests.integration.serving_topics import Feeder, produce, read_topic, values
from tests.integration.training_data import _publish

pytestmark = pytest.mark.integration
HOUR_MS = 3_600_000


def simulated(n: int, hour: int, seed: int) -> tuple[list, pd.DataFrame]:
    """n telemetry records in the `hour`-th hour after START_MS's, and their outcomes."""
    sim = Simulator(CONTRACT, SimConfig(devices=40, rate=n / 600, seed=seed))
    start = START_MS + hour * HOUR_MS
    records, outcomes = [], []
    for batch in sim.replay(start, start + 600_000):
        if batch.topic == "telemetry":
            records += list(zip(batch.keys, batch.values, batch.timestamps))
        else:
            outcomes += [orjson.loads(v) for v in batch.values]
    frame = pd.DataFrame(outcomes)
    frame["observed_at"] = pd.to_datetime(frame["observed_at"], utc=True).astype("datetime64[ms, UTC]")
    return records[:n], frame


def shuffled_booster():
    """A model that learned nothing: trained on the simulated events with their labels shuffled."""
    import xgboost as xgb

    sim = Simulator(CONTRACT, SimConfig(devices=50, rate=4000 / 3600, seed=5))
    frame = sim.frame(START_MS, START_MS + HOUR_MS)
    labels = np.random.default_rng(5).permutation(frame[CONTRACT.label.field].to_numpy())
    dtrain = xgb.DMatrix(model_frame(CONTRACT, frame), label=labels, enable_categorical=True)
    return xgb.train({"objective": "binary:logistic", "max_depth": 4, "eta": 0.3, "seed": 5}, dtrain, 8)


def wait_for(sidecar: SidecarProcess, champion: str, shadow: str | None, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        health = sidecar.wait_health()
        if health["champion"] == champion and health["shadow"] == shadow:
            return
        time.sleep(0.2)
    raise AssertionError(f"sidecar still serves {health} (waited for v{champion} shadow {shadow})")


def ids(records: list) -> list[str]:
    return [orjson.loads(v)["event_id"] for _, v, _ in records]


def test_a_worse_champion_is_rolled_back_in_its_bake_window_and_every_event_is_scored_once(
        topic_factory, settings, mlflow_uri, tmp_path, monkeypatch):
    ctx = serving_env(topic_factory, settings, CONTINUUM_BAKE_HOURS=24)
    env, client, name, lake, bootstrap = ctx["env"], ctx["client"], ctx["name"], ctx["lake"], ctx["bootstrap"]
    good = register(client, name, train_booster(seed=1), lake=lake)
    bad = register(client, name, shuffled_booster(), lake=lake, metrics={"holdout_roc_auc": 0.99})  # injected
    before, _ = simulated(600, 0, seed=11)
    baked, outcomes = simulated(3000, 1, seed=12)
    during = simulated(1500, 2, seed=13)[0]
    after = simulated(300, 3, seed=14)[0]
    first_hour = datetime.fromtimestamp(START_MS / 1000, timezone.utc).replace(minute=0, second=0)
    bake_hour = Window.hour(first_hour + HOUR)
    set_clock(lake, first_hour)  # event time, as a paced replay stands: each move is stamped with it
    promote(env, client, good)
    sidecar = SidecarProcess(env, tmp_path / "sidecar.log").start()
    try:
        wait_for(sidecar, good, None)
        produce(bootstrap, env["CONTINUUM_TOPIC_TELEMETRY"], before)
        read_topic(bootstrap, env["CONTINUUM_TOPIC_PREDICTIONS"], until=lambda r: len(r) >= len(before))
        set_clock(lake, bake_hour.start)
        promote(env, client, bad)
        wait_for(sidecar, bad, good)  # on probation: the champion it replaced is the shadow
        produce(bootstrap, env["CONTINUUM_TOPIC_TELEMETRY"], baked)
        read_topic(bootstrap, env["CONTINUUM_TOPIC_PREDICTIONS_SHADOW"], until=lambda r: len(r) >= len(baked))

        # lake_offload's hour of predictions and shadow predictions; the outcomes as they are observed
        for kind in ("predictions", SHADOW):
            topic = env["CONTINUUM_TOPIC_PREDICTIONS" if kind == "predictions" else "CONTINUUM_TOPIC_PREDICTIONS_SHADOW"]
            consumer = window_consumer({"bootstrap.servers": bootstrap})
            try:
                offload_hour(consumer, lake, CONTRACT, kind, topic, bake_hour, timedelta(minutes=10))
            finally:
                consumer.close()
        for start, part in outcomes.groupby(outcomes["observed_at"].dt.floor("h")):
            _publish(lake, "outcomes", Window.hour(start.to_pydatetime()), part, "observed_at")
        end = bake_hour.end + 6 * HOUR
        verdict = champion_bake(lake, CONTRACT, BakeSettings(hours=24, min_labels=200), name, bad, end)
        assert verdict["judged"] and verdict["rollback"], verdict
        matured = outcomes["event_id"].isin(ids(baked)) & (outcomes["observed_at"] < pd.Timestamp(end))
        assert verdict["pairs"] == int(matured.sum())  # every matured event of the bake, paired once

        for key, value in {**env, "CONTINUUM_ALERT_STATE_PATH": str(tmp_path / "alerts.json"),
                           "CONTINUUM_ALERT_LOG_PATH": str(tmp_path / "alerts.jsonl")}.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("AIRFLOW_CONN_KAFKA_DEFAULT",
                           json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": bootstrap}}))
        from plugins.tasks.monitor import BAKE_ACTOR, roll_back_failed_bake

        outcome = {"run_id": "monitor-bake", "window": {"end": end.isoformat()}, "kind": "none", "retrain": False,
                   "reason": "", "links": {"decision": "lake://decision"}, "bake": verdict}
        set_clock(lake, end)  # the monitor's window has ended: the rollback happens then
        feeder = Feeder(bootstrap, env["CONTINUUM_TOPIC_TELEMETRY"], during, per_tick=100, tick_s=0.05).start()
        feeder.wait(sent=500)
        done = roll_back_failed_bake([outcome])  # while events flow
        feeder.wait()
        wait_for(sidecar, good, None)
        produce(bootstrap, env["CONTINUUM_TOPIC_TELEMETRY"], after)
        sent = before + baked + during + after
        rows = values(read_topic(bootstrap, env["CONTINUUM_TOPIC_PREDICTIONS"], until=lambda r: len(r) >= len(sent)))
    finally:
        sidecar.close()

    scored = Counter(p["event_id"] for p in rows)
    assert set(scored) == set(ids(sent)) and set(scored.values()) == {1}  # every event once: none lost, none twice
    version = {p["event_id"]: p["model_version"] for p in rows}
    assert {version[i] for i in ids(before)} == {good} and {version[i] for i in ids(baked)} == {bad}
    assert {version[i] for i in ids(during)} <= {good, bad} and {version[i] for i in ids(after)} == {good}

    moves = [(r["type"], r["from"], r["to"], r["actor"]) for r in read_records(lake)[0] if r["model"] == name]
    assert moves[-2:] == [("promotion", good, bad, "test"), ("rollback", bad, good, BAKE_ACTOR)]
    assert done["record"]["to"] == good and client.get_model_version_by_alias(name, "champion").version == good
    control = values(read_topic(bootstrap, env["CONTINUUM_TOPIC_CONTROL"], until=lambda r: len(r) >= 3))
    assert control[-1]["type"] == "rollback" and control[-1]["version"] == good
    alerts = read_alert_log(tmp_path / "alerts.jsonl")
    assert any(a.kind == ROLLED_BACK and "worse than" in a.reason and a.evidence.get("decision") for a in alerts), alerts

    refused = judge_version(mlflow_uri, lake, name, bad, load_settings().gates, good)
    assert refused["decision"] == "rejected" and [g["name"] for g in refused["gates"] if not g["passed"]] == ["bake"]
