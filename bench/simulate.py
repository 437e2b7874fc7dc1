"""Benchmark: the simulator's replay into the real broker, in telemetry events per second.

    python bench/simulate.py            # 1,000,000 events, median of 3 runs
    python bench/simulate.py --quick    # 50,000 events, one run (the test suite's smoke check)

Each run replays a six-hour range a day ago into fresh topics `bench.simulate` (6 partitions) and
`bench.simulate.outcomes` (3): every event and its late outcome, generated, encoded, produced and
flushed, and the broker's high watermarks checked against what was sent. The baseline, measured in
the same run, is the naive loop: one event at a time as a dict, json.dumps, produce, flush.
Writes bench/results/simulate.json (with --quick only when --out is given).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ml.contract import load_contract
from ml.settings import load_settings
from ml.simulate import SimConfig, Simulator
from ml.simulate.produce import KafkaSink
from results_file import RESULTS as RESULTS_DIR, save_figures

TOPICS = {"telemetry": ("bench.simulate", 6), "outcomes": ("bench.simulate.outcomes", 3)}
RESULTS = RESULTS_DIR / "simulate.json"
HOUR = 3_600_000


def fresh_topics(admin: AdminClient) -> None:
    """Delete the bench topics if they exist and create them empty (deletion finishes asynchronously)."""
    names = [name for name, _ in TOPICS.values()]
    existing = [n for n in names if n in admin.list_topics(timeout=10).topics]
    for fut in (admin.delete_topics(existing).values() if existing else []):
        fut.result(30)
    deadline = time.monotonic() + 60
    while True:
        futures = admin.create_topics([NewTopic(n, num_partitions=p, replication_factor=1) for n, p in TOPICS.values()])
        try:
            for fut in futures.values():
                fut.result(30)
            return
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            leftovers = [n for n in names if n in admin.list_topics(timeout=10).topics]
            for fut in (admin.delete_topics(leftovers).values() if leftovers else []):
                try:
                    fut.result(30)
                except KafkaException:
                    pass
            time.sleep(1)


def window(events: int) -> tuple[int, int, float]:
    """Six hours ending a day ago (so every outcome is already in the past), at the rate giving `events`."""
    end = (time.time_ns() // 1_000_000 - 24 * HOUR) // 60_000 * 60_000
    return end - 6 * HOUR, end, events / (6 * 3600)


def watermarks(bootstrap: str) -> int:
    """Records the broker holds in the bench topics."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench.simulate"})
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
                   for name, parts in TOPICS.values() for p in range(parts))
    finally:
        consumer.close()


def run_simulator(bootstrap: str, admin: AdminClient, events: int) -> dict:
    fresh_topics(admin)
    start, end, rate = window(events)
    started = time.perf_counter()
    sim = Simulator(load_contract("machine_telemetry"), SimConfig(devices=200, rate=rate, seed=1))
    sink = KafkaSink(bootstrap, {k: name for k, (name, _) in TOPICS.items()})
    for batch in sim.replay(start, end):
        sink.send(batch)
    report = sink.close()
    seconds = time.perf_counter() - started
    stored = watermarks(bootstrap)
    if not report.ok or stored != report.sent or sim.stats.outcomes != sim.stats.events:
        sys.exit(f"bench: lost records: sent {report.sent}, stored {stored}, errors {report.errors}")
    return {"events": sim.stats.events, "messages": report.sent, "seconds": seconds}


def run_naive(bootstrap: str, admin: AdminClient, events: int) -> dict:
    """The loop one would write first: a dict per event, json.dumps, produce, flush."""
    fresh_topics(admin)
    start = window(events)[0]
    contract = load_contract("machine_telemetry")
    frame = Simulator(contract, SimConfig(devices=200, rate=100.0, seed=1)).frame(start, start + events * 10)
    producer = Producer({"bootstrap.servers": bootstrap})
    topic = TOPICS["telemetry"][0]
    started = time.perf_counter()
    for row in frame.drop(columns=[contract.label.field]).to_dict("records"):
        ts = row["ts"]
        row["ts"] = ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"
        producer.produce(topic, json.dumps(row).encode(), row["device_id"].encode(), timestamp=ts.value // 1_000_000)
        producer.flush()
    return {"events": len(frame), "messages": len(frame), "seconds": time.perf_counter() - started}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="50,000 events, one run")
    parser.add_argument("--events", type=int, help="events per simulator run (default 1,000,000; quick 50,000)")
    parser.add_argument("--runs", type=int, help="simulator runs, the median is reported (default 3; quick 1)")
    parser.add_argument("--out", type=Path, help=f"where to write the figures (default {RESULTS}; quick: nowhere)")
    args = parser.parse_args()
    events = args.events or (50_000 if args.quick else 1_000_000)
    runs = args.runs or (1 if args.quick else 3)
    naive_events = 500 if args.quick else 2_000
    bootstrap = load_settings().kafka_bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        admin.list_topics(timeout=10)
    except KafkaException as exc:
        sys.exit(f"bench: Kafka at {bootstrap} is unreachable ({exc}); start it: python docker/local/stack.py up kafka")
    try:
        naive = run_naive(bootstrap, admin, naive_events)
        results = [run_simulator(bootstrap, admin, events) for _ in range(runs)]
    finally:
        admin.delete_topics([name for name, _ in TOPICS.values()])
    eps = statistics.median(r["events"] / r["seconds"] for r in results)
    naive_eps = naive["events"] / naive["seconds"]
    print(f"simulate: replay into Kafka at {bootstrap} ({TOPICS['telemetry'][1]} partitions), {os.cpu_count()} cores")
    print(f"{'method':<44}{'events':>11}{'seconds':>10}{'events/s':>12}")
    print(f"{'naive: json.dumps + produce + flush per event':<44}{naive['events']:>11,}{naive['seconds']:>10.2f}{naive_eps:>12,.0f}")
    for i, r in enumerate(results, 1):
        label = f"continuum-simulate replay, run {i} (+ outcomes)"
        print(f"{label:<44}{r['events']:>11,}{r['seconds']:>10.2f}{r['events'] / r['seconds']:>12,.0f}")
    print(f"{'median':<65}{eps:>12,.0f}   {eps / naive_eps:,.0f}x naive, target >= 50,000")
    figures = {
        "events_per_s": round(eps, 1), "baseline_events_per_s": round(naive_eps, 1), "ratio": round(eps / naive_eps, 1),
        "events": results[0]["events"], "messages_per_s": round(statistics.median(r["messages"] / r["seconds"] for r in results), 1),
        "runs": len(results), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cores": os.cpu_count(),
        "notes": (f"median of {len(results)} replays of {results[0]['events']:,} events, each with its outcome "
                  f"(2 messages per event), lz4, linger 50 ms, idempotent; baseline: {naive['events']:,} events one "
                  "at a time with a flush each, telemetry only; local single-node KRaft broker on the same machine"),
    }
    save_figures("simulate", figures, args.quick, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
