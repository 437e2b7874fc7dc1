"""The offload's own rules for telemetry, through the real broker: a repeated event and an event time
out of the hour's bounds are quarantined with their reasons, and the hour stays valid."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import pyarrow.parquet as pq

from ml.contract import load_contract
from ml.lake.window import Window
from ml.offload import offload_hour, window_consumer
from ml.simulate.stream import SimConfig, Simulator
from ml.validation import read_hour, validate_hour

CONTRACT = load_contract("machine_telemetry")
LATENESS, SKEW = timedelta(minutes=10), timedelta(minutes=30)
WINDOW = Window.hour(datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=40))
MIN = 60_000


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _event(event_id: str, ts_ms: int) -> bytes:
    return json.dumps({"event_id": event_id, "device_id": "dev-x", "ts": _iso(ts_ms), "device_type": "L",
                       "site": "plant-a", "firmware": "1.0", "air_temperature_k": 300.0, "process_temperature_k": 310.0,
                       "rotational_speed_rpm": 1500.0, "torque_nm": 40.0, "tool_wear_min": 10.0,
                       "vibration_mm_s": 2.0}).encode()


def _produce(bootstrap: str, topic: str, records: list[tuple]) -> None:
    """(value, kafka timestamp ms, partition or None) in order."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for value, ts, partition in records:
        kwargs = {} if partition is None else {"partition": partition}
        producer.produce(topic, value, json.loads(value)["device_id"].encode(), timestamp=ts, **kwargs)
    assert producer.flush(60) == 0


def _offload(bootstrap, lake, topic, window=WINDOW) -> dict:
    consumer = window_consumer({"bootstrap.servers": bootstrap})
    try:
        return offload_hour(consumer, lake, CONTRACT, "telemetry", topic, window, LATENESS, batch_size=300, max_skew=SKEW)
    finally:
        consumer.close()


def _quarantine(lake, manifest) -> list[dict]:
    rows = pq.read_table(io.BytesIO(lake.read_bytes(manifest["quarantine_file"]["key"]))).to_pylist()
    for row in rows:
        row["event_id"], row["kind"] = json.loads(row["value"])["event_id"], row["reason"].split(":")[0]
    return rows


def test_a_repeated_event_and_one_two_hours_late_are_quarantined_and_the_hour_stays_valid(kafka_bootstrap,
                                                                                            topic_factory, lake):
    topic = topic_factory("offload.screen", partitions=2)
    sim = Simulator(CONTRACT, SimConfig(devices=20, rate=0.3, seed=5))
    records = [(v, ts, None) for b in sim.replay(WINDOW.start_ms, WINDOW.end_ms) if b.topic == "telemetry"
               for v, ts in zip(b.values, b.timestamps) if v.startswith(b"{") and b'"event_id"' in v]
    repeated, at = records[len(records) // 3][0], WINDOW.start_ms + 50 * MIN
    late = _event("late-2h", at - 120 * MIN)  # its Kafka timestamp is in the hour, its own time two hours earlier
    _produce(kafka_bootstrap, topic, records + [(repeated, at, None), (late, at, None)])
    expected = {json.loads(v)["event_id"] for v, _, _ in records}

    manifest = _offload(kafka_bootstrap, lake, topic)
    outcome = validate_hour(lake, CONTRACT, "telemetry", WINDOW)

    assert outcome.status == "valid", outcome.critical_failures
    df, problems = read_hour(lake, CONTRACT, "telemetry", json.loads(lake.read_text(
        f"raw/telemetry/{WINDOW.partition_path}/_manifest.json")))
    assert problems == [] and set(df["event_id"]) == expected and len(df) == len(expected)
    quarantined = _quarantine(lake, manifest)
    assert {(r["event_id"], r["kind"]) for r in quarantined} == {
        (json.loads(repeated)["event_id"], "duplicate"), ("late-2h", "event_time_out_of_window")}
    (dup,) = [r for r in quarantined if r["kind"] == "duplicate"]
    kept = df.loc[df["event_id"] == json.loads(repeated)["event_id"]].iloc[0]
    assert (dup["kafka_partition"], dup["value"]) == (kept["kafka_partition"], repeated)
    assert dup["kafka_offset"] > kept["kafka_offset"], "the first record by offset is kept"
    counts = {"duplicate": 1, "event_time_out_of_window": 1}
    assert manifest["quarantine_reasons"] == outcome.quarantined == counts and manifest["quarantined"] == 2
    assert json.loads(lake.read_text(outcome.result_key))["meta"]["continuum"]["quarantined"] == counts


def test_event_time_bounds_at_their_edges_and_duplicates_across_partitions(kafka_bootstrap, topic_factory, lake):
    """Exactly the skew, or exactly the lateness before the hour, is accepted; a step beyond is not.
    Across partitions the record with the earliest Kafka timestamp is kept, then the lowest partition."""
    topic = topic_factory("offload.edges", partitions=2)
    start, end, lag, skew = WINDOW.start_ms, WINDOW.end_ms, LATENESS // timedelta(milliseconds=1), SKEW // timedelta(milliseconds=1)
    k = start + 35 * MIN  # k ± skew (and a second beyond) stays within the hour's bounds
    records = [
        (_event("skew-exact", k + skew), k, 0), (_event("skew-past", k + skew + 1000), k, 0),
        (_event("skew-exact-early", k - skew), k, 1), (_event("skew-past-early", k - skew - 1000), k, 1),
        (_event("low-edge", start - lag), start, 0), (_event("below-low-edge", start - lag - 1), start, 0),
        (_event("high-edge", end + lag - 1), end - 1, 1), (_event("at-high-edge", end + lag), end - 1, 1),
        (_event("cross", start + 10 * MIN), start + 10 * MIN, 0), (_event("cross", start + 5 * MIN), start + 5 * MIN, 1),
        (_event("tie", start + 7 * MIN), start + 7 * MIN, 1), (_event("tie", start + 7 * MIN), start + 7 * MIN, 0),
    ]
    _produce(kafka_bootstrap, topic, records)

    manifest = _offload(kafka_bootstrap, lake, topic)
    outcome = validate_hour(lake, CONTRACT, "telemetry", WINDOW)

    assert outcome.status == "valid", outcome.critical_failures
    df, _ = read_hour(lake, CONTRACT, "telemetry", json.loads(lake.read_text(
        f"raw/telemetry/{WINDOW.partition_path}/_manifest.json")))
    kept = {(r.event_id, r.kafka_partition) for r in df.itertuples()}
    assert kept == {("skew-exact", 0), ("skew-exact-early", 1), ("low-edge", 0), ("high-edge", 1),
                    ("cross", 1), ("tie", 0)}
    assert {(r["event_id"], r["kind"], r["kafka_partition"]) for r in _quarantine(lake, manifest)} == {
        ("skew-past", "event_time_skew", 0), ("skew-past-early", "event_time_skew", 1),
        ("below-low-edge", "event_time_out_of_window", 0), ("at-high-edge", "event_time_out_of_window", 1),
        ("cross", "duplicate", 0), ("tie", "duplicate", 1)}
