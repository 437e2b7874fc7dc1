"""The hourly offload against the real broker, on a local lake and on S3.

Known events over three hours (plus their neighbours) are produced out of order, up to 5 minutes
late, with bad records mixed in; each hour must hold exactly its own records.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import pyarrow.parquet as pq
import pytest

from ml.contract import load_contract
from ml.lake.window import Window
from ml.offload import WindowError, offload_hour, window_consumer
from ml.simulate.stream import SimConfig, Simulator

# Hours of the recent past: the broker keeps a week, judged by record timestamps.
_BASE = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=30)
HOURS = [Window.hour(_BASE + timedelta(hours=h)) for h in range(3)]


def _hour(offset: int) -> Window:
    """The hour `offset` hours after the first test hour."""
    return Window.hour(_BASE + timedelta(hours=offset))


def _text(window: Window) -> str:
    return f"{window.start:%Y-%m-%dT%H}"
LATENESS = timedelta(minutes=10)
CONTRACT = load_contract("machine_telemetry")


def _bad_records(ts_ms: int) -> list[tuple[bytes, bytes, int, str]]:
    """(key, value, timestamp, expected word in the reason) for each kind of bad record."""
    good = {"event_id": "bad-x", "device_id": "dev-bad", "ts": f"{HOURS[1].start + timedelta(minutes=30):%Y-%m-%dT%H:%M:%S}.000Z", "device_type": "L",
            "site": "plant-a", "firmware": "1.0", "air_temperature_k": 300.0, "process_temperature_k": 310.0,
            "rotational_speed_rpm": 1500.0, "torque_nm": 40.0, "tool_wear_min": 10.0, "vibration_mm_s": 2.0}
    broken = [
        (b'{"event_id": "bad-1", "device_id": ', "undecodable"),
        (json.dumps({k: v for k, v in good.items() if k != "torque_nm"} | {"event_id": "bad-2"}).encode(), "torque_nm"),
        (json.dumps(good | {"event_id": "bad-3", "rotational_speed_rpm": "fast"}).encode(), "rotational_speed_rpm"),
        (json.dumps(good | {"event_id": "bad-4", "torque_nm": 912.0}).encode(), "torque_nm"),
        (json.dumps(good | {"event_id": "bad-5", "firmware": "x" * 10_000}).encode(), "oversized"),
        (json.dumps(good | {"event_id": "bad-6", "site": "mars"}).encode(), "site"),
    ]
    return [(b"dev-bad", value, ts_ms + i, word) for i, (value, word) in enumerate(broken)]


@pytest.fixture(scope="module")
def stream(kafka_bootstrap):
    """A fresh telemetry topic holding three hours of events (and 15 minutes either side), produced
    out of timestamp order, plus bad records in the middle hour. Returns (topic, expected ids per hour)."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"test.offload.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=6, replication_factor=1)])[topic].result(30)
    sim = Simulator(CONTRACT, SimConfig(devices=40, rate=2.0, seed=7))
    records = []
    start, end = HOURS[0].start_ms - 15 * 60_000, HOURS[-1].end_ms + 15 * 60_000
    for batch in sim.replay(start, end):
        if batch.topic == "telemetry":
            records += [(k, v, ts) for k, v, ts in zip(batch.keys, batch.values, batch.timestamps)
                        if b'"event_id"' in v and v.startswith(b"{")]
    bad = _bad_records(HOURS[1].start_ms + 30 * 60_000)
    rng = random.Random(3)
    order = sorted(records + [(k, v, ts) for k, v, ts, _ in bad],
                   key=lambda r: r[2] + rng.uniform(-5, 5) * 60_000)  # out of order, <= 5 min
    assert sum(1 for a, b in zip(order, order[1:]) if b[2] < a[2]) > 100, "the stream must really be out of order"
    late = (b"dev-late", records[len(records) // 2][1].replace(b'"event_id":"', b'"event_id":"late-'),
            HOURS[0].start_ms + 60_000)  # produced after everything else: 3 hours late
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 20})
    for key, value, ts in order + [late]:
        producer.produce(topic, value, key, timestamp=ts)
    assert producer.flush(60) == 0
    expected = {w.partition_path: {json.loads(v)["event_id"] for _, v, ts in records if w.start_ms <= ts < w.end_ms}
                for w in HOURS}
    yield topic, expected, bad
    admin.delete_topics([topic])[topic].result(30)


def _ids(lake, manifest) -> list[str]:
    ids = []
    for f in manifest["files"]:
        with lake.staged("scratch/read") as path:  # a local copy, also for S3
            path.write_bytes(lake.read_bytes(f["key"]))
            ids += pq.read_table(path).column("event_id").to_pylist()
        lake.delete("scratch/read")
    return ids


def _offload(bootstrap, lake, topic, window):
    consumer = window_consumer({"bootstrap.servers": bootstrap})
    try:
        return offload_hour(consumer, lake, CONTRACT, "telemetry", topic, window, LATENESS, batch_size=500)
    finally:
        consumer.close()


def test_each_hour_holds_exactly_its_records_and_quarantines_bad_ones(kafka_bootstrap, stream, lake):
    topic, expected, bad = stream
    seen: set[str] = set()
    for window in HOURS:
        manifest = _offload(kafka_bootstrap, lake, topic, window)
        ids = _ids(lake, manifest)
        assert len(ids) == len(set(ids)), "an event was written twice"
        assert set(ids) == expected[window.partition_path], window.partition_path
        assert not seen & set(ids), "an event landed in two hours"
        seen |= set(ids)
        assert manifest["rows"] == len(ids)
        assert json.loads(lake.read_text(f"raw/telemetry/{window.partition_path}/_manifest.json")) == manifest
        lo, hi = manifest["time_bounds"]["min_ms"], manifest["time_bounds"]["max_ms"]
        assert window.start_ms <= lo <= hi < window.end_ms
        for f in manifest["files"]:
            assert f["key"].endswith(f"part-{f['partition']}-{f['first_offset']}-{f['last_offset']}."
                                     f"{manifest['generation']}.parquet")
        # the hour's drift summary is published with it: every row counted, per category value
        summary = json.loads(lake.read_text(f"raw/telemetry/{window.partition_path}/_summary.{manifest['generation']}.json"))
        assert summary["rows"] == len(ids) and sum(summary["categorical"]["site"]["counts"].values()) == len(ids)
    middle = json.loads(lake.read_text(f"raw/telemetry/{HOURS[1].partition_path}/_manifest.json"))
    assert middle["quarantined"] == len(bad)
    assert HOURS[0].partition_path and json.loads(
        lake.read_text(f"raw/telemetry/{HOURS[0].partition_path}/_manifest.json"))["quarantined"] == 0
    with lake.staged("scratch/q") as path:
        path.write_bytes(lake.read_bytes(middle["quarantine_file"]["key"]))
        rejects = pq.read_table(path).to_pylist()
    assert len(rejects) == len(bad)
    words = {value: word for _, value, _, word in bad}
    assert {row["value"] for row in rejects} == set(words), "the original bytes are kept"
    for row in rejects:
        assert words[row["value"]] in row["reason"], (words[row["value"]], row["reason"])
        assert row["kafka_partition"] is not None and row["kafka_offset"] >= 0


def test_a_record_later_than_the_lateness_is_quarantined_once_not_lost(kafka_bootstrap, stream, lake):
    topic, _, _ = stream
    own = _offload(kafka_bootstrap, lake, topic, HOURS[0])
    assert not any(i.startswith("late-") for i in _ids(lake, own))
    assert own["quarantined"] == 0
    holder = _offload(kafka_bootstrap, lake, topic, _hour(3))
    assert holder["quarantine_reasons"] == {"late": 1}
    with lake.staged("scratch/q") as path:
        path.write_bytes(lake.read_bytes(holder["quarantine_file"]["key"]))
        (row,) = pq.read_table(path).to_pylist()
    assert b'"event_id":"late-' in row["value"] and f"its hour {_text(HOURS[0])}" in row["reason"]


def test_a_rerun_rewrites_identical_content(kafka_bootstrap, stream, lake):
    topic, _, _ = stream
    first = _offload(kafka_bootstrap, lake, topic, HOURS[1])
    before = {k: lake.read_bytes(k) for k in lake.list()}
    other = f"raw/telemetry/{_hour(-1).partition_path}/_manifest.json"
    lake.write_text(other, "{}")  # another hour: untouched
    again = _offload(kafka_bootstrap, lake, topic, HOURS[1])
    after = {k: lake.read_bytes(k) for k in lake.list() if k != other}
    assert again == first
    assert after == before
    assert lake.exists(other)


def test_an_empty_hour_gets_a_manifest_and_no_files(kafka_bootstrap, stream, lake):
    topic, _, _ = stream
    empty = _hour(-7)
    manifest = _offload(kafka_bootstrap, lake, topic, empty)
    assert manifest["rows"] == 0 and manifest["files"] == [] and manifest["quarantined"] == 0
    assert lake.list(f"raw/telemetry/{empty.partition_path}") == [f"raw/telemetry/{empty.partition_path}/_manifest.json"]


def test_an_unknown_topic_is_a_clear_error(kafka_bootstrap, tmp_path):
    from ml.lake import Lake

    with pytest.raises(WindowError, match="does not exist"):
        _offload(kafka_bootstrap, Lake(str(tmp_path)), f"no.such.topic.{uuid.uuid4().hex[:6]}", HOURS[0])


def _cli(bootstrap, topic, lake_dir, *args) -> subprocess.Popen:
    env = {**os.environ, "CONTINUUM_KAFKA_BOOTSTRAP": bootstrap, "CONTINUUM_TOPIC_TELEMETRY": topic,
           "CONTINUUM_LAKE_URI": str(lake_dir)}
    return subprocess.Popen([sys.executable, "-m", "ml.offload.cli", "--topic", "telemetry", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_the_cli_backfills_a_range_hour_by_hour(kafka_bootstrap, stream, tmp_path):
    topic, expected, _ = stream
    proc = _cli(kafka_bootstrap, topic, tmp_path / "lake", "--start", _text(HOURS[0]), "--end", _text(_hour(3)))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert [line["rows"] for line in lines] == [len(expected[w.partition_path]) for w in HOURS]


def test_the_cli_names_a_bad_argument(tmp_path):
    proc = _cli("127.0.0.1:9092", "telemetry", tmp_path, "--hour", "2026-11-20T10:30")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and b"--hour" in err and b"not the start of an hour" in err


def test_a_killed_offload_leaves_nothing_visible_and_the_rerun_completes(kafka_bootstrap, tmp_path):
    """kill -9 while the hour's Parquet files are being written: no file, no manifest; a rerun writes the hour."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    from ml.lake import Lake

    topic = f"test.offload.kill.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=6, replication_factor=1)])[topic].result(30)
    window = _hour(-3)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 50, "compression.type": "lz4"})
    sim = Simulator(CONTRACT, SimConfig(devices=200, rate=120.0, seed=11))
    for batch in sim.replay(window.start_ms, window.end_ms):
        if batch.topic == "telemetry":
            for k, v, ts in zip(batch.keys, batch.values, batch.timestamps):
                while True:
                    try:
                        producer.produce(topic, v, k, timestamp=ts)
                        break
                    except BufferError:
                        producer.poll(0.1)
    assert producer.flush(120) == 0
    lake_dir = tmp_path / "lake"
    hour_dir = lake_dir / "raw" / "telemetry" / window.partition_path
    try:
        proc = _cli(kafka_bootstrap, topic, lake_dir, "--hour", _text(window))
        deadline = time.monotonic() + 60
        while not (hour_dir.is_dir() and any(p.name.startswith(".tmp-") for p in hour_dir.iterdir())):
            assert proc.poll() is None, "the offload finished before it could be killed; produce more"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        lake = Lake(str(lake_dir))
        assert lake.list() == [], "a killed offload must leave nothing a reader can see"

        rerun = _cli(kafka_bootstrap, topic, lake_dir, "--hour", _text(window))
        out, err = rerun.communicate(timeout=180)
        assert rerun.returncode == 0, err.decode()
        manifest = json.loads(lake.read_text(f"raw/telemetry/{window.partition_path}/_manifest.json"))
        assert manifest["rows"] == sim.count_before(window.end_ms) - sim.count_before(window.start_ms)
        assert not any(p.name.startswith(".tmp-") for p in hour_dir.iterdir()), "leftovers are cleaned"
    finally:
        admin.delete_topics([topic])[topic].result(30)
