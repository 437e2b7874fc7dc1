"""kill -9 in the middle of a live stream, or outputs that cannot be delivered, then a restart: every event
still gets a prediction."""

from __future__ import annotations

import time

import orjson
import pytest

from tests.integration.serving_models import register
from tests.integration.serving_process import SidecarProcess, promote, serving_env
from tests.integration.serving_topics import Feeder, events, produce, read_topic, values

pytestmark = pytest.mark.integration


def test_kill_9_mid_stream_then_restart_loses_no_event(topic_factory, settings, mlflow_uri, tmp_path):
    ctx = serving_env(topic_factory, settings, CONTINUUM_SERVING_BATCH_MAX=200)
    env, client, bootstrap = ctx["env"], ctx["client"], ctx["bootstrap"]
    promote(env, client, register(client, ctx["name"], lake=ctx["lake"]))
    good = events(6000, seed=5)
    sidecar = SidecarProcess(env, tmp_path / "first.log").start()
    sidecar.wait_health()
    feeder = Feeder(bootstrap, env["CONTINUUM_TOPIC_TELEMETRY"], good, per_tick=100, tick_s=0.05).start()
    try:
        read_topic(bootstrap, env["CONTINUUM_TOPIC_PREDICTIONS"], until=lambda r: len(r) >= 1000)
        sidecar.kill()  # SIGKILL: no drain, no commit, in-flight batches lost from memory
        before = len(read_topic(bootstrap, env["CONTINUUM_TOPIC_PREDICTIONS"], timeout_s=1))
        assert feeder.sent < len(good), "the stream ended before the kill"
        time.sleep(1)
        sidecar = SidecarProcess(env, tmp_path / "second.log").start()
        feeder.wait()
        rows = read_topic(bootstrap, env["CONTINUUM_TOPIC_PREDICTIONS"], timeout_s=180,
                          until=lambda r: len({orjson.loads(x["value"])["event_id"] for x in r}) >= len(good))
    finally:
        sidecar.close()
    preds = values(rows)
    expected = {orjson.loads(v)["event_id"] for _, v, _ in good}
    assert {p["event_id"] for p in preds} == expected, f"{len(expected - {p['event_id'] for p in preds})} lost"
    assert 1000 <= before < len(good)
    scores = {}
    for p in preds:  # a repeat is the same event scored again by the same model: same score
        assert scores.setdefault(p["event_id"], p["score"]) == p["score"]


def scored(sidecar: SidecarProcess) -> float:
    text = sidecar.http("/metrics")[1].decode()
    return float(text.split('continuum_events_total{outcome="scored"} ')[1].split()[0])


def test_replicas_share_the_partitions_and_one_leaving_loses_nothing(topic_factory, settings, mlflow_uri, tmp_path):
    ctx = serving_env(topic_factory, settings, partitions=4)
    env, client, bootstrap = ctx["env"], ctx["client"], ctx["bootstrap"]
    promote(env, client, register(client, ctx["name"], lake=ctx["lake"]))
    good = events(10_000, seed=7)
    first = SidecarProcess(env, tmp_path / "a.log").start()
    second = SidecarProcess(env, tmp_path / "b.log").start()
    try:
        deadline = time.monotonic() + 60
        while True:  # both replicas of the one group own some of the partitions
            owned = [set(first.wait_health()["partitions"]), set(second.wait_health()["partitions"])]
            if all(owned) and not owned[0] & owned[1] and owned[0] | owned[1] == {0, 1, 2, 3}:
                break
            assert time.monotonic() < deadline, first.output() + second.output()
            time.sleep(0.2)
        feeder = Feeder(bootstrap, env["CONTINUUM_TOPIC_TELEMETRY"], good, per_tick=100, tick_s=0.05).start()
        deadline = time.monotonic() + 60
        while not (scored(first) > 0 and scored(second) > 0):
            assert time.monotonic() < deadline and feeder.sent < len(good), first.output() + second.output()
            time.sleep(0.1)
        assert second.terminate() == 0, second.output()  # revocation: drain, commit, leave the group
        assert feeder.sent < len(good), "the stream ended before the replica left"
        feeder.wait()
        rows = read_topic(bootstrap, env["CONTINUUM_TOPIC_PREDICTIONS"], timeout_s=180,
                          until=lambda r: len({orjson.loads(x["value"])["event_id"] for x in r}) >= len(good))
    finally:
        first.close(), second.close()
    expected = {orjson.loads(v)["event_id"] for _, v, _ in good}
    assert {p["event_id"] for p in values(rows)} == expected
    assert len(rows) - len(expected) < 500, "a clean hand-over should repeat little or nothing"


def test_outputs_that_cannot_be_delivered_stop_the_sidecar_and_a_restart_scores_them(topic_factory, settings,
                                                                                     mlflow_uri, tmp_path):
    """Its predictions topic does not exist (the broker does not create topics): the sidecar exits 1 naming the
    first offsets of the batch it could not deliver, and commits nothing from there on; restarted with the
    topic there, it scores every event."""
    ctx = serving_env(topic_factory, settings, partitions=1)
    env, client, bootstrap = ctx["env"], ctx["client"], ctx["bootstrap"]
    promote(env, client, register(client, ctx["name"], lake=ctx["lake"]))
    good = events(500, seed=9)
    produce(bootstrap, env["CONTINUUM_TOPIC_TELEMETRY"], good)
    missing = {**env, "CONTINUUM_TOPIC_PREDICTIONS": f"{env['CONTINUUM_TOPIC_PREDICTIONS']}.missing"}
    first = SidecarProcess(missing, tmp_path / "first.log").start()
    try:
        assert first.proc.wait(120) == 1, first.output()
        assert "partition:offset 0:0 not delivered" in first.output(), first.output()
    finally:
        first.close()
    sidecar = SidecarProcess(env, tmp_path / "second.log").start()
    try:
        rows = read_topic(bootstrap, env["CONTINUUM_TOPIC_PREDICTIONS"], timeout_s=180,
                          until=lambda r: len(r) >= len(good) or sidecar.proc.poll() is not None)
        output = sidecar.output()
    finally:
        sidecar.close()
    assert {p["event_id"] for p in values(rows)} == {orjson.loads(v)["event_id"] for _, v, _ in good}, output
