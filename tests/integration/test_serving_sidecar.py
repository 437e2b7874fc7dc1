"""The sidecar scores every event of the real stream once with the champion, dead-letters bad ones (cut
to a bounded size when too large) and keeps going, serves /predict and /metrics, and commits everything it
scored on SIGTERM."""

from __future__ import annotations

import re

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from ml.contract.codec import prediction_schema
from tests.integration.serving_models import CONTRACT, register
from tests.integration.serving_process import SidecarProcess, promote, serving_env
from tests.integration.serving_topics import events, produce, read_topic, values

pytestmark = pytest.mark.integration

BAD = [
    (b"dev-x", b"{not json", "undecodable"),
    (b"dev-x", orjson.dumps({"event_id": "bad-missing", "device_id": "dev-x"}), "is missing"),
    (b"dev-x", None, "empty message"),
]


def _bad_typed(good: bytes) -> list:
    event = orjson.loads(good)
    mistyped = {**event, "event_id": "bad-typed", "torque_nm": "lots"}
    out_of_range = {**event, "event_id": "bad-range", "torque_nm": 912.0}
    return [(b"dev-x", orjson.dumps(mistyped), "torque_nm must be a number"),
            (b"dev-x", orjson.dumps(out_of_range), "torque_nm=912.0 above max 100")]


def test_every_event_scored_bad_ones_dead_lettered_predict_and_metrics(topic_factory, settings, mlflow_uri, tmp_path):
    ctx = serving_env(topic_factory, settings)
    env, client, bootstrap = ctx["env"], ctx["client"], ctx["bootstrap"]
    version = register(client, ctx["name"], threshold=0.05, lake=ctx["lake"])
    promote(env, client, version)
    good = events(3000)
    bad = BAD + _bad_typed(good[0][1])
    # bad records in the middle of the stream: the good ones after them must still be scored
    stream = good[:1500] + [(k, v, good[1500][2]) for k, v, _ in bad] + good[1500:]
    produce(bootstrap, env["CONTINUUM_TOPIC_TELEMETRY"], [(k, v, ts) for k, v, ts in stream])

    sidecar = SidecarProcess(env, tmp_path / "sidecar.log").start()
    try:
        health = sidecar.wait_health()
        assert health["champion"] == version
        rows = read_topic(bootstrap, env["CONTINUUM_TOPIC_PREDICTIONS"], until=lambda r: len(r) >= len(good))
        preds = values(rows)
        good_ids = {orjson.loads(v)["event_id"] for _, v, _ in good}
        assert {p["event_id"] for p in preds} == good_ids and len(preds) == len(good)
        assert all(list(p) == prediction_schema(CONTRACT).names for p in preds)
        assert {p["model_version"] for p in preds} == {version} and {p["model_name"] for p in preds} == {ctx["name"]}
        assert all(p["decision"] == ("alert" if p["score"] >= 0.05 else "normal") for p in preds)
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", p["served_at"]) for p in preds)
        assert all(r["key"] == p["device_id"].encode() for r, p in zip(rows, preds))
        event_time = {orjson.loads(v)["event_id"]: ts for _, v, ts in good}  # each prediction keeps its event's time
        assert all(r["timestamp"] == event_time[p["event_id"]] for r, p in zip(rows, preds))

        alerts = values(read_topic(bootstrap, env["CONTINUUM_TOPIC_ALERTS"],
                                   until=lambda r: len(r) >= sum(p["decision"] == "alert" for p in preds)))
        assert 0 < len(alerts) < len(preds)
        assert {a["event_id"] for a in alerts} == {p["event_id"] for p in preds if p["decision"] == "alert"}
        assert all(a["threshold"] == 0.05 and a["model_version"] == version and a["command"] for a in alerts)

        dlq = read_topic(bootstrap, env["CONTINUUM_TOPIC_DLQ"], until=lambda r: len(r) >= len(bad))
        assert len(dlq) == len(bad)
        telemetry = read_topic(bootstrap, env["CONTINUUM_TOPIC_TELEMETRY"], until=lambda r: len(r) >= len(stream))
        source = {(r["partition"], r["offset"]): r["value"] for r in telemetry}
        for record, (_, value, reason) in zip(sorted(dlq, key=lambda r: bad_index(r, bad)), bad):
            h = record["headers"]
            assert reason in h["error"].decode(), h
            assert h["source_topic"].decode() == env["CONTINUUM_TOPIC_TELEMETRY"]
            assert source[(int(h["source_partition"]), int(h["source_offset"]))] == value == record["value"]

        # /predict: the same model and feature code as the stream give the same score for the same event
        stream_scores = {p["event_id"]: p for p in preds}
        code, body = sidecar.http("/predict", good[7][1])
        assert code == 200, body
        (answer,) = orjson.loads(body)["predictions"]
        assert answer["model_version"] == version
        assert answer["score"] == pytest.approx(stream_scores[answer["event_id"]]["score"], abs=1e-6)
        code, body = sidecar.http("/predict", orjson.dumps({"events": [orjson.loads(good[0][1]), {"event_id": "x"}]}))
        assert code == 400 and orjson.loads(body)["rejects"][0]["index"] == 1, body
        assert sidecar.http("/predict", b"[1, 2")[0] == 400

        metrics = sidecar.http("/metrics")[1].decode()
        assert f'continuum_events_total{{outcome="scored"}} {float(len(good))}' in metrics
        assert f"continuum_dlq_total {float(len(bad))}" in metrics
        assert f'continuum_model_version{{version="{version}"}} 1.0' in metrics
        assert re.search(r"continuum_batch_size_count [1-9]", metrics)
        assert f'continuum_end_to_end_seconds_count {float(len(good))}' in metrics

        report = sidecar.report()  # an operator's `kill -USR1`: where it stands and every thread's stack
        assert "report on request" in report and "'assigned': [0, 1, 2]" in report, report[-3000:]
        assert "Current thread" in report and "ml/serving/sidecar.py" in report, report[-3000:]
        assert sidecar.proc.poll() is None  # it goes on serving

        assert sidecar.terminate() == 0, sidecar.output()
        assert committed(bootstrap, env) == end_offsets(bootstrap, env["CONTINUUM_TOPIC_TELEMETRY"])
    finally:
        sidecar.close()


def test_a_record_too_large_to_dead_letter_whole_is_cut_and_the_stream_goes_on(topic_factory, settings, mlflow_uri,
                                                                              tmp_path):
    """A 1.5 MB record (the broker takes 2 MiB, the sidecar's producer 1,000,000 bytes) is dead-lettered cut
    to CONTINUUM_SERVING_DLQ_MAX_BYTES, with its coordinates and original size; every other event is
    scored and everything is committed."""
    limit = 10_000
    ctx = serving_env(topic_factory, settings, CONTINUUM_SERVING_DLQ_MAX_BYTES=limit)
    env, client, bootstrap = ctx["env"], ctx["client"], ctx["bootstrap"]
    promote(env, client, register(client, ctx["name"], lake=ctx["lake"]))
    good = events(2000, seed=3)
    big = orjson.dumps({**orjson.loads(good[0][1]), "event_id": "big-1", "padding": "x" * 1_500_000})
    stream = good[:1000] + [(b"dev-big", big, good[1000][2])] + good[1000:]
    produce(bootstrap, env["CONTINUUM_TOPIC_TELEMETRY"], stream, **{"message.max.bytes": 2_000_000})

    sidecar = SidecarProcess(env, tmp_path / "sidecar.log").start()
    try:
        sidecar.wait_health()
        rows = read_topic(bootstrap, env["CONTINUUM_TOPIC_PREDICTIONS"],
                          until=lambda r: len(r) >= len(good) or sidecar.proc.poll() is not None)
        assert {p["event_id"] for p in values(rows)} == {orjson.loads(v)["event_id"] for _, v, _ in good}, \
            sidecar.output()
        (dead,) = read_topic(bootstrap, env["CONTINUUM_TOPIC_DLQ"], until=lambda r: len(r) >= 1)
        h = dead["headers"]
        assert int(h["truncated"]) == len(big) and "oversized" in h["error"].decode(), h
        telemetry = read_topic(bootstrap, env["CONTINUUM_TOPIC_TELEMETRY"], until=lambda r: len(r) >= len(stream))
        source = {(r["partition"], r["offset"]): r["value"] for r in telemetry}
        assert source[(int(h["source_partition"]), int(h["source_offset"]))] == big
        assert h["source_topic"].decode() == env["CONTINUUM_TOPIC_TELEMETRY"] and dead["key"] == b"dev-big"
        assert big.startswith(dead["value"])
        assert len(dead["key"]) + len(dead["value"]) + sum(len(k) + len(v) for k, v in h.items()) == limit
        metrics = sidecar.http("/metrics")[1].decode()
        assert "continuum_dlq_truncated_total 1.0" in metrics and "continuum_dlq_total 1.0" in metrics
        assert sidecar.terminate() == 0, sidecar.output()
        assert committed(bootstrap, env) == end_offsets(bootstrap, env["CONTINUUM_TOPIC_TELEMETRY"])
    finally:
        sidecar.close()


def bad_index(record: dict, bad: list) -> int:
    return next(i for i, (_, value, _) in enumerate(bad) if value == record["value"])


def committed(bootstrap: str, env: dict) -> dict:
    topic = env["CONTINUUM_TOPIC_TELEMETRY"]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": env["CONTINUUM_SERVING_GROUP"]})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {tp.partition: tp.offset for tp in consumer.committed([TopicPartition(topic, p) for p in parts], 10)}
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str) -> dict:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "offsets-reader"})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    finally:
        consumer.close()
