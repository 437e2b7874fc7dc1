"""Benchmark: one hour of telemetry from the real broker to Parquet in the lake, in one process.

    python bench/offload.py            # an hour of 5,000,000 events, median of 3 runs
    python bench/offload.py --quick    # 200,000 events, 1 run (the test suite runs this)

Measured in the same run on the same records: the offload end to end (read, decode, check, write
Parquet, manifest) as a separate process, so its peak RSS is its own; and the ceiling, a bare consumer
reading the same offsets with nothing done to the records. Prints a table and writes
bench/results/offload.json (a --quick run writes only with --out). The published reference for this job, Kafka
Connect's S3 sink at about 250k records/s, ran on larger machines; it is quoted, not measured here.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ml.contract import load_contract
from results_file import save_figures
from ml.lake.layout import manifest_key
from ml.lake.window import Window
from ml.offload import window_consumer
from ml.settings import load_settings
from ml.simulate.produce import KafkaSink
from ml.simulate.stream import SimConfig, Simulator

# an hour of the recent past: the broker keeps a week, judged by record timestamps
HOUR = Window.hour(datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=6))


def produce_hour(bootstrap: str, topic: str, events: int) -> int:
    sim = Simulator(load_contract("machine_telemetry"), SimConfig(devices=2000, rate=events / 3600, seed=42))
    sink = KafkaSink(bootstrap, {"telemetry": topic, "outcomes": topic + ".outcomes"})
    for batch in sim.replay(HOUR.start_ms, HOUR.end_ms, until_ms=HOUR.start_ms):
        if batch.topic == "telemetry":
            sink.send(batch)
    report = sink.close()
    assert report.ok, report
    return sim.count_before(HOUR.end_ms) - sim.count_before(HOUR.start_ms)


def ceiling(bootstrap: str, topic: str, total: int) -> float:
    """Records/s of a consumer that only reads the topic, with the offload's own client settings."""
    consumer = window_consumer({"bootstrap.servers": bootstrap})
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in parts])
    seen, start = 0, time.perf_counter()
    while seen < total:
        seen += len(consumer.consume(10_000, timeout=1.0))
    elapsed = time.perf_counter() - start
    consumer.close()
    return seen / elapsed


def offload_once(bootstrap: str, topic: str, lake: Path) -> tuple[float, float, dict]:
    """(seconds, peak RSS MB, manifest) of the offload CLI for the hour, run as its own process."""
    env = {**os.environ, "CONTINUUM_KAFKA_BOOTSTRAP": bootstrap, "CONTINUUM_TOPIC_TELEMETRY": topic,
           "CONTINUUM_LAKE_URI": str(lake)}
    code = ("import resource, sys, time; from ml.offload.cli import main; t = time.perf_counter(); "
            "rc = main(['--topic', 'telemetry', '--hour', sys.argv[1], '--lateness-minutes', '0']); "
            "print('BENCH', time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024); "
            "sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, HOUR.start.strftime("%Y-%m-%dT%H")], env=env,
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"offload failed:\n{proc.stderr[-3000:]}")
    line = next(l for l in proc.stdout.splitlines() if l.startswith("BENCH"))
    seconds, rss = map(float, line.split()[1:])
    manifest = json.loads((lake / manifest_key("telemetry", HOUR)).read_text())
    return seconds, rss, manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200,000 events, one run")
    parser.add_argument("--events", type=int, help="events in the hour (default 5,000,000; quick 200,000)")
    parser.add_argument("--runs", type=int, help="runs to take the median of (default 3; quick 1)")
    parser.add_argument("--out", type=Path, help="where to write the figures (default bench/results/offload.json; "
                                                  "a --quick run writes only when given this)")
    args = parser.parse_args(argv)
    events = args.events or (200_000 if args.quick else 5_000_000)
    runs = args.runs or (1 if args.quick else 3)
    bootstrap = load_settings().kafka_bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"bench.offload.{uuid.uuid4().hex[:8]}"
    topics = [topic, topic + ".outcomes"]
    for fut in admin.create_topics([NewTopic(t, num_partitions=6, replication_factor=1) for t in topics]).values():
        fut.result(30)
    try:
        produced = produce_hour(bootstrap, topic, events)
        ceilings, results = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(runs):
                ceilings.append(ceiling(bootstrap, topic, produced))
                results.append(offload_once(bootstrap, topic, Path(tmp) / f"lake{i}"))
        seconds = statistics.median(r[0] for r in results)
        manifest = results[0][2]
        assert manifest["rows"] == produced, f"offloaded {manifest['rows']} of {produced} events"
        mb = sum(f["bytes"] for f in manifest["files"]) / 1e6
        figures = {
            "events_per_s": round(produced / seconds, 1),
            "mb_per_s": round(mb / seconds, 2),
            "peak_rss_mb": round(max(r[1] for r in results), 1),
            "events": produced,
            "seconds": round(seconds, 2),
            "ceiling_events_per_s": round(statistics.median(ceilings), 1),
            "parquet_mb": round(mb, 1),
        }
        figures["ratio_to_ceiling"] = round(figures["events_per_s"] / figures["ceiling_events_per_s"], 3)
    finally:
        for fut in admin.delete_topics(topics).values():
            fut.result(30)
    figures.update({
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cores": os.cpu_count(),
        "notes": (f"median of {runs} run(s); one hour of {produced:,} machine_telemetry events in 6 partitions, "
                  "offloaded by one process (continuum-offload) to a local lake, zstd Parquet; ceiling = bare "
                  "consumer on the same records in the same run; broker on the same 2 cores"),
    })
    print(f"{'measure':28} {'value':>14}")
    for key in ("events", "events_per_s", "ceiling_events_per_s", "ratio_to_ceiling", "mb_per_s", "parquet_mb",
                "peak_rss_mb", "seconds"):
        print(f"{key:28} {figures[key]:>14,}")
    print("targets: >= 200,000 events/s; peak RSS < 600 MB for 5,000,000 events")
    save_figures("offload", figures, args.quick, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
