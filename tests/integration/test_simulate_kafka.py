"""continuum-simulate against the real broker: exact counts, event-time timestamps, one late label each."""

from __future__ import annotations

import json
import time
import uuid

import orjson
import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer, TopicPartition

from ml.contract import ContractError, decode_event, load_contract
from ml.simulate.cli import main
from ml.simulate.scenarios import parse_time

pytestmark = pytest.mark.integration
CONTRACT = load_contract("machine_telemetry")
MINUTE = 60_000
DELAY = ["--label-delay-median", "2", "--label-delay-sigma", "1", "--label-delay-min", "0.5", "--label-delay-max", "10"]


def read_all(bootstrap: str, topic: str) -> list:
    """Every record of a topic, up to the high watermarks read at the start."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        parts = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        remaining, records = {p for p in parts if ends[p] > 0}, []
        deadline = time.monotonic() + 60
        while remaining and time.monotonic() < deadline:
            for msg in consumer.consume(10_000, timeout=1):
                assert msg.error() is None, msg.error()
                records.append(msg)
                if msg.offset() >= ends[msg.partition()] - 1:
                    remaining.discard(msg.partition())
        assert not remaining, f"could not read {topic} to its end"
        return records
    finally:
        consumer.close()


def simulate(capsys, bootstrap: str, telemetry: str, outcomes: str, *args: str) -> dict:
    code = main([*args, "--bootstrap", bootstrap, "--telemetry-topic", telemetry, "--outcomes-topic", outcomes])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out.strip().splitlines()[-1])


def recent_range(minutes: int) -> list[str]:
    """A past range that starts three hours ago (inside the broker's retention), on a minute boundary."""
    start = (time.time_ns() // 1_000_000 - 3 * 60 * MINUTE) // MINUTE * MINUTE
    iso = lambda ms: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))  # noqa: E731
    return ["--start", iso(start), "--end", iso(start + minutes * MINUTE)]


def test_replay_produces_exact_counts_event_time_stamps_and_one_late_label_each(capsys, kafka_bootstrap, topic_factory):
    telemetry, outcomes = topic_factory("telemetry", 6), topic_factory("outcomes", 3)
    summary = simulate(capsys, kafka_bootstrap, telemetry, outcomes, "replay", *recent_range(10), "--rate", "5", *DELAY)
    assert summary["events"] == 3000 and summary["outcomes"] == 3000 and summary["outcomes_not_due"] == 0
    records, labels = read_all(kafka_bootstrap, telemetry), read_all(kafka_bootstrap, outcomes)
    assert len(records) == 3000 and len(labels) == 3000
    assert {r.partition() for r in records} == set(range(6))
    events, last_ts = {}, {}
    for r in records:
        event = decode_event(CONTRACT, r.value())
        kind, ts = r.timestamp()
        assert kind == TIMESTAMP_CREATE_TIME and ts == parse_time(event["ts"])
        assert r.key().decode() == event["device_id"]
        assert ts >= last_ts.get(r.partition(), 0)  # the hourly offload relies on this order
        last_ts[r.partition()] = ts
        events[event["event_id"]] = ts
    assert len(events) == 3000
    joined = set()
    for r in labels:
        outcome = orjson.loads(r.value())
        kind, ts = r.timestamp()
        assert kind == TIMESTAMP_CREATE_TIME and ts == parse_time(outcome["observed_at"])
        assert 0.5 * MINUTE <= ts - events[outcome["event_id"]] <= 10 * MINUTE
        assert outcome["failure"] in (0, 1) and outcome["event_id"] not in joined
        joined.add(outcome["event_id"])
    assert joined == set(events)


def test_bad_records_reach_the_topic_and_every_one_fails_the_contract(capsys, kafka_bootstrap, topic_factory):
    telemetry, outcomes = topic_factory("telemetry", 6), topic_factory("outcomes", 3)
    summary = simulate(capsys, kafka_bootstrap, telemetry, outcomes, "replay", *recent_range(10), "--rate", "2",
                       "--scenario", "bad_records:rate=0.05", *DELAY)
    records = read_all(kafka_bootstrap, telemetry)
    assert len(records) == summary["events"] + summary["bad_records"] == 1200 + summary["bad_records"]
    rejected = 0
    for r in records:
        try:
            decode_event(CONTRACT, r.value())
        except ContractError:
            rejected += 1
    assert rejected == summary["bad_records"] > 20
    assert len(read_all(kafka_bootstrap, outcomes)) == summary["events"]


def test_live_emits_now_and_labels_once_their_delay_has_passed(capsys, kafka_bootstrap, topic_factory):
    telemetry, outcomes = topic_factory("telemetry", 6), topic_factory("outcomes", 3)
    started = time.time_ns() // 1_000_000
    summary = simulate(capsys, kafka_bootstrap, telemetry, outcomes, "live", "--rate", "100", "--duration", "2",
                       "--drain-labels", "--label-delay-median", "0.01", "--label-delay-min", "0.005",
                       "--label-delay-max", "0.02")
    finished = time.time_ns() // 1_000_000
    records, labels = read_all(kafka_bootstrap, telemetry), read_all(kafka_bootstrap, outcomes)
    assert 150 <= len(records) == summary["events"] <= 250 and len(labels) == len(records)
    times = {orjson.loads(r.value())["event_id"]: r.timestamp()[1] for r in records}
    assert started <= min(times.values()) and max(times.values()) <= finished
    for r in labels:
        delay = r.timestamp()[1] - times[orjson.loads(r.value())["event_id"]]
        assert 300 <= delay <= 1200
        assert r.timestamp()[1] <= finished


def test_a_missing_topic_is_named(capsys, kafka_bootstrap):
    code = main(["replay", *recent_range(1), "--bootstrap", kafka_bootstrap, "--telemetry-topic", "no.such.topic",
                 "--timeout", "2"])
    assert code == 1
    assert "topic(s) no.such.topic do not exist" in capsys.readouterr().err
