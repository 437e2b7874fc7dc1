"""Model changes while the sidecar runs: no champion yet, a promotion, a corrupt version, an A/B split
and shadow scoring, each through the real registry and the real control topic."""

from __future__ import annotations

import time

import orjson
import pytest

from ml.serving.routing import device_bucket
from tests.integration.serving_models import register, train_booster, two_versions
from tests.integration.serving_process import SidecarProcess, promote, send_control, serving_env
from tests.integration.serving_topics import Feeder, events, produce, read_topic, values
from tests.integration.test_serving_sidecar import committed

pytestmark = pytest.mark.integration


def test_no_champion_means_no_consumption_until_one_is_promoted(topic_factory, settings, mlflow_uri, tmp_path):
    ctx = serving_env(topic_factory, settings)
    env, bootstrap = ctx["env"], ctx["bootstrap"]
    version = register(ctx["client"], ctx["name"], lake=ctx["lake"])  # registered, but nothing is champion
    good = events(500)
    produce(bootstrap, env["CONTINUUM_TOPIC_TELEMETRY"], good)
    sidecar = SidecarProcess(env, tmp_path / "sidecar.log").start()
    try:
        health = sidecar.wait_health(ready=False)
        assert health["ready"] is False and "no champion" in health["reason"]
        time.sleep(5)  # two alias polls
        assert sidecar.http("/healthz")[0] == 503
        assert read_topic(bootstrap, env["CONTINUUM_TOPIC_PREDICTIONS"], timeout_s=2) == []
        assert set(committed(bootstrap, env).values()) == {-1001}  # the group never consumed (OFFSET_INVALID)
        code, body = sidecar.http("/predict", good[0][1])
        assert code == 503 and b"no champion" in body

        promote(env, ctx["client"], version)
        assert sidecar.wait_health(timeout_s=30)["champion"] == version
        preds = values(read_topic(bootstrap, env["CONTINUUM_TOPIC_PREDICTIONS"], until=lambda r: len(r) >= len(good)))
        assert len(preds) == len(good) and {p["model_version"] for p in preds} == {version}
    finally:
        sidecar.close()


def test_promotion_swaps_the_version_without_restart_or_gap(topic_factory, settings, mlflow_uri, tmp_path):
    ctx = serving_env(topic_factory, settings, CONTINUUM_SERVING_POLL_S=600)  # only the control message can do it
    env, client, bootstrap = ctx["env"], ctx["client"], ctx["bootstrap"]
    v1, v2 = two_versions(ctx)
    promote(env, client, v1)
    sidecar = SidecarProcess(env, tmp_path / "sidecar.log").start()
    try:
        sidecar.wait_health()
        pid = sidecar.proc.pid
        good = events(4000, seed=3)
        feeder = Feeder(bootstrap, env["CONTINUUM_TOPIC_TELEMETRY"], good, per_tick=100, tick_s=0.1).start()
        feeder.wait(sent=1200)
        promote(env, client, v2)
        feeder.wait()
        rows = read_topic(bootstrap, env["CONTINUUM_TOPIC_PREDICTIONS"], until=lambda r: len(r) >= len(good))
        preds = values(rows)
        assert sorted(p["event_id"] for p in preds) == sorted(orjson.loads(v)["event_id"] for _, v, _ in good)
        assert {p["model_version"] for p in preds} == {v1, v2}
        for part in {r["partition"] for r in rows}:  # in each partition: v1, then only v2
            seq = [p["model_version"] for r, p in sorted(zip(rows, preds), key=lambda x: x[0]["offset"])
                   if r["partition"] == part]
            assert seq == sorted(seq, key=lambda v: v != v1), f"partition {part} went back to v1"
        assert preds[-1]["model_version"] == v2 and sidecar.proc.pid == pid and sidecar.proc.poll() is None
        assert max(p["latency_ms"] for p in preds) < 2000, "scoring paused during the swap"
        assert sidecar.wait_health()["champion"] == v2
    finally:
        sidecar.close()


def test_corrupt_model_is_refused_and_the_old_one_keeps_serving(topic_factory, settings, mlflow_uri, tmp_path):
    ctx = serving_env(topic_factory, settings)
    env, client, bootstrap = ctx["env"], ctx["client"], ctx["bootstrap"]
    good_version = register(client, ctx["name"], lake=ctx["lake"])
    bad_version = register(client, ctx["name"], corrupt=True)
    promote(env, client, good_version)
    sidecar = SidecarProcess(env, tmp_path / "sidecar.log").start()
    try:
        sidecar.wait_health()
        promote(env, client, bad_version)
        alerts = values(read_topic(bootstrap, env["CONTINUUM_TOPIC_ALERTS"],
                                   until=lambda r: any(b"model_refused" in x["value"] for x in r), timeout_s=60))
        refused = [a for a in alerts if a["type"] == "model_refused"]
        assert refused and refused[0]["subject"] == ctx["name"] and refused[0]["severity"] == "page"
        assert refused[0]["evidence"]["version"] == bad_version and f"v{bad_version}" in refused[0]["title"]
        assert "failed to load" in refused[0]["reason"] and f"Still serving v{good_version}" in refused[0]["reason"]
        good = events(1000)
        produce(bootstrap, env["CONTINUUM_TOPIC_TELEMETRY"], good)
        preds = values(read_topic(bootstrap, env["CONTINUUM_TOPIC_PREDICTIONS"], until=lambda r: len(r) >= len(good)))
        assert len(preds) == len(good) and {p["model_version"] for p in preds} == {good_version}
        health = sidecar.wait_health()
        assert health["champion"] == good_version and health["refused"] == [bad_version]
        assert "continuum_model_refused_total 1.0" in sidecar.http("/metrics")[1].decode()
    finally:
        sidecar.close()


def test_traffic_split_by_device_and_shadow_scoring(topic_factory, settings, mlflow_uri, tmp_path):
    ctx = serving_env(topic_factory, settings, CONTINUUM_SERVING_SHADOW="true")
    env, client, bootstrap = ctx["env"], ctx["client"], ctx["bootstrap"]
    v1 = register(client, ctx["name"], train_booster(seed=1), lake=ctx["lake"])
    v2 = register(client, ctx["name"], train_booster(seed=2, rounds=12), lake=ctx["lake"])
    client.set_registered_model_alias(ctx["name"], "challenger", v2)
    promote(env, client, v1)
    sidecar = SidecarProcess(env, tmp_path / "sidecar.log").start()
    try:
        assert sidecar.wait_health()["shadow"] == v2
        send_control(env, {"type": "traffic", "model": ctx["name"], "split": {v1: 0.5, v2: 0.5}})
        deadline = time.monotonic() + 30
        while sidecar.wait_health()["versions"] != [v1, v2]:
            assert time.monotonic() < deadline, sidecar.output()
            time.sleep(0.2)
        good = events(1000, devices=40)
        produce(bootstrap, env["CONTINUUM_TOPIC_TELEMETRY"], good)
        preds = values(read_topic(bootstrap, env["CONTINUUM_TOPIC_PREDICTIONS"], until=lambda r: len(r) >= len(good)))
        assert len(preds) == len(good)
        by_device = {}
        for p in preds:
            by_device.setdefault(p["device_id"], set()).add(p["model_version"])
        assert all(len(v) == 1 for v in by_device.values()), "a device saw two versions"
        assert {p["model_version"] for p in preds} == {v1, v2}
        assert all(by_device[d] == {v1 if device_bucket(d) < 0.5 else v2} for d in by_device)
        shadow = values(read_topic(bootstrap, env["CONTINUUM_TOPIC_PREDICTIONS_SHADOW"],
                                   until=lambda r: len(r) >= len(good)))
        assert {s["event_id"] for s in shadow} == {p["event_id"] for p in preds}
        assert {s["model_version"] for s in shadow} == {v2}

        send_control(env, {"type": "traffic", "model": ctx["name"], "split": {}})  # end of the experiment
        deadline = time.monotonic() + 30
        while sidecar.wait_health()["versions"] != [v1]:
            assert time.monotonic() < deadline, sidecar.output()
            time.sleep(0.2)
    finally:
        sidecar.close()
