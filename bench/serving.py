"""Benchmark: the serving sidecar against the real broker, with its ceiling and a naive baseline.

    python bench/serving.py            # 300,000 events, median of 5 runs
    python bench/serving.py --quick    # 50,000 events, one run (the test suite's smoke check)

Each run fills a fresh topic with live-stamped telemetry, then measures, side by side:
  (a) passthrough: the sidecar's own Kafka loop (consume, produce, commit after delivery) with no model:
      the ceiling of consume-to-produce on this machine;
  (b) the sidecar: `python -m ml.serving`, one process, scoring the champion (a 50-tree XGBoost model);
  (c) the naive baseline: one event at a time, decode_event, the generic MLflow pyfunc, produce;
  (d) one sidecar against two replicas of one consumer group on the same events (bench/serving_group.py);
  and the end-to-end latency (event produced -> prediction appended by the broker) with 5,000 events/s
offered to the sidecar, counted after a warm-up at the same rate (the broker is still collecting the
garbage of the throughput runs when the offer starts). The sidecar starts before the model is promoted
and waits, not ready, so the ceiling is measured just before and just after its run (their mean is the
run's ceiling): a shared machine's load changes from one minute to the next, and a ratio must compare
like with like.
Throughput is counted over the middle 80% of the outputs' broker append times (steady state), so
neither start-up nor the pipeline filling and draining is counted. Writes bench/results/serving.json
(with --quick only given --out).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ml.contract import decode_event, model_frame  # noqa: E402
from ml.kafka import scoring_consumer, scoring_producer  # noqa: E402
from ml.lake import Lake  # noqa: E402
from ml.runtime import SWITCH_INTERVAL_S, serving_tuning  # noqa: E402
from ml.serving.metrics import ServingMetrics  # noqa: E402
from ml.serving.stream import Records, StreamLoop  # noqa: E402
from ml.settings import load_settings  # noqa: E402
from ml.settings.login import use_stack_login  # noqa: E402
from results_file import RESULTS as RESULTS_DIR, save_figures  # noqa: E402
from serving_group import GROUP_PARTITIONS, ReplicaComparison, group_topics  # noqa: E402
from tests.integration.serving_models import CONTRACT, new_model, register, train_booster  # noqa: E402
from tests.integration.serving_process import SidecarProcess, promote  # noqa: E402
from tests.integration.serving_topics import events, produce, read_topic  # noqa: E402

RESULTS = RESULTS_DIR / "serving.json"
APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}
MODEL_ROUNDS, MODEL_DEPTH = 50, 4
LATENCY_WARMUP_S = 5.0  # offered at 5,000/s before the latency is counted


def gil_handovers(interval: float, seconds: float = 0.2) -> int:
    """How often, in `seconds`, a thread that keeps giving the GIL up for a C call (a scorer's Arrow and
    XGBoost calls) gets it back from a thread that runs Python without pause (the loop), with the switch
    interval `interval`. Only hand-overs count (the other thread ran since the last one): when the OS has
    not run that thread yet, the first takes the GIL straight back, and that says nothing of the interval."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(interval)
    stop, count, spins = False, 0, 0

    def python_bound():
        nonlocal spins
        while not stop:
            spins += 1

    def returns_from_c():
        nonlocal count
        seen = spins
        while not stop:
            time.sleep(0)  # releases the GIL and must take it back
            if spins != seen:
                count, seen = count + 1, spins
    threads = [threading.Thread(target=python_bound), threading.Thread(target=returns_from_c)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(seconds)
    finally:
        stop = True
        for thread in threads:
            thread.join()
        sys.setswitchinterval(before)
    return count


def gil_figures(repeats: int = 5) -> dict[str, float]:
    """The switch interval's effect on this host, Python's default and the sidecar's interleaved: the
    median hand-overs in 0.2 s of each, and their ratio."""
    default, tuned = [], []
    for _ in range(repeats):
        default.append(gil_handovers(0.005))
        tuned.append(gil_handovers(SWITCH_INTERVAL_S))
    d, t = statistics.median(default), statistics.median(tuned)
    return {"gil_handovers_default": d, "gil_handovers_tuned": t, "gil_tuned_vs_default": t / max(d, 1)}


def make_topics(admin: AdminClient, run: str) -> dict[str, str]:
    names = {k: f"bench.serving.{run}.{k}" for k in ("in", "pass", "pass2", "pred", "alerts", "dlq", "control", "shadow", "naive")}
    topics = [NewTopic(n, num_partitions=3 if k in ("in", "pass", "pass2", "pred") else 1, replication_factor=1,
                       config=APPEND_TIME) for k, n in names.items()]
    for fut in admin.create_topics(topics).values():
        fut.result(30)
    return names


def percentile(xs: list, q: float) -> float:
    return float(np.percentile(np.asarray(xs, dtype=np.float64), q)) if xs else float("nan")


def span_eps(rows: list) -> float:
    """Outputs per second in steady state: the middle 80% of the outputs by broker append time, so neither
    the pipeline filling at the start (batches consumed and scored before the first is produced) nor
    its tail is counted, for the ceiling and the sidecar alike."""
    stamps = np.sort(np.array([r["timestamp"] for r in rows], dtype=np.int64))
    lo, hi = len(stamps) // 10, len(stamps) * 9 // 10
    return (hi - lo) / max((stamps[hi] - stamps[lo]) / 1000, 1e-3)


def passthrough(settings, src: str, out: str, n: int) -> float:
    """The sidecar's Kafka loop forwarding raw values from `src` to `out`: no decode, no model (with the
    sidecar's batch bounds, GC and thread settings)."""
    with serving_tuning():
        return _passthrough(settings, src, out, n)


def _passthrough(settings, src: str, out: str, n: int) -> float:
    bootstrap = settings.kafka_bootstrap
    consumer = Consumer(scoring_consumer(bootstrap, f"bench-pass-{uuid.uuid4().hex}"))
    producer = Producer(scoring_producer(bootstrap))
    loop = StreamLoop(consumer, producer, src, ServingMetrics(), settings.serving_batch_max,
                      settings.serving_batch_wait_ms / 1000)
    loop.subscribe()
    done = [0]

    def forward(batch, output):
        output.many(out, Records(batch.keys, batch.values))
        done[0] += len(batch)
    deadline = time.monotonic() + 600
    while done[0] < n and time.monotonic() < deadline:
        loop.step(lambda batch: batch, forward)
    loop.close()
    return span_eps(read_topic(bootstrap, out, until=lambda r: len(r) >= n))


def scored(sidecar: SidecarProcess) -> float:
    text = sidecar.http("/metrics")[1].decode()
    found = re.search(r'continuum_events_total\{outcome="scored"\} (\S+)', text)
    return float(found.group(1)) if found else 0.0


def sidecar_run(bootstrap: str, settings, client, topics: dict, model: str, version: str, n: int,
                latency_s: float, log: Path, lake_uri: str) -> dict:
    """Ceiling, sidecar, ceiling again, then latency; the sidecar is up (waiting for a champion) before
    the first ceiling run, so the three throughput runs follow each other within seconds."""
    env = {"CONTINUUM_KAFKA_BOOTSTRAP": bootstrap, "CONTINUUM_MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
           "CONTINUUM_MODEL_NAME": model, "CONTINUUM_LAKE_URI": lake_uri,
           "CONTINUUM_SERVING_GROUP": f"bench-serving-{uuid.uuid4().hex[:8]}",
           "CONTINUUM_TOPIC_TELEMETRY": topics["in"], "CONTINUUM_TOPIC_PREDICTIONS": topics["pred"],
           "CONTINUUM_TOPIC_ALERTS": topics["alerts"], "CONTINUUM_TOPIC_DLQ": topics["dlq"],
           "CONTINUUM_TOPIC_CONTROL": topics["control"], "CONTINUUM_TOPIC_PREDICTIONS_SHADOW": topics["shadow"]}
    sidecar = SidecarProcess(env, log).start()
    try:
        sidecar.wait_health(ready=False, timeout_s=120)  # up, no champion yet: it consumes nothing
        before = passthrough(settings, topics["in"], topics["pass"], n)
        promote(env, client, version)
        sidecar.wait_health(timeout_s=120)
        deadline = time.monotonic() + 600
        while scored(sidecar) < n and time.monotonic() < deadline:
            time.sleep(0.2)
        eps = span_eps(read_topic(bootstrap, topics["pred"], until=lambda r: len(r) >= n))
        after = passthrough(settings, topics["in"], topics["pass2"], n)
        sent = offer(bootstrap, topics["in"], 5000, LATENCY_WARMUP_S + latency_s)
        while scored(sidecar) < n + len(sent) and time.monotonic() < deadline:
            time.sleep(0.2)
        rows = read_topic(bootstrap, topics["pred"], until=lambda r: len(r) >= n + len(sent))
        counted = min(sent.values()) + LATENCY_WARMUP_S * 1000
        lat = [r["timestamp"] - sent[e] for r in rows
               if (e := orjson.loads(r["value"])["event_id"]) in sent and sent[e] >= counted]
        assert sidecar.terminate() == 0, sidecar.output()
    finally:
        sidecar.close()
    return {"passthrough_eps": (before + after) / 2, "passthrough_before_eps": before, "passthrough_after_eps": after,
            "sidecar_eps": eps, "p50_ms_at_5k": percentile(lat, 50), "p99_ms_at_5k": percentile(lat, 99),
            "latency_events": len(lat)}


def offer(bootstrap: str, topic: str, rate: int, seconds: float) -> dict[str, int]:
    """Produce live events at `rate` per second for `seconds`; returns event id -> produce time (ms)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1, "compression.type": "lz4"})
    # connected, with the topic's partitions known, before the clock starts: otherwise the first events
    # are stamped while this load generator is still connecting, which is not the sidecar's latency
    producer.list_topics(topic, timeout=30)
    records = events(int(rate * seconds), seed=11)
    ids = [orjson.loads(value)["event_id"] for _, value, _ in records]  # before the clock: this shares the cores
    sent: dict[str, int] = {}
    tick, per_tick, start = 0.01, max(int(rate * 0.01), 1), time.monotonic()
    for i in range(0, len(records), per_tick):
        time.sleep(max(start + (i // per_tick) * tick - time.monotonic(), 0))  # one wake-up a tick
        now = time.time_ns() // 1_000_000
        for (key, value, _), event_id in zip(records[i:i + per_tick], ids[i:i + per_tick]):
            producer.produce(topic, value, key, timestamp=now)
            sent[event_id] = now
        producer.poll(0)
    producer.flush(30)
    return sent


def naive(bootstrap: str, topics: dict, model_uri: str, m: int) -> float:
    """One event at a time: poll, decode_event, the generic pyfunc, produce."""
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(model_uri)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-naive-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest"})
    producer = Producer({"bootstrap.servers": bootstrap})
    consumer.subscribe([topics["in"]])
    done, started = 0, None
    while done < m:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        started = started or time.perf_counter()
        X = model_frame(CONTRACT, pd.DataFrame([decode_event(CONTRACT, msg.value())]))
        X = X.assign(**{c: X[c].cat.codes.astype("float64").where(X[c].cat.codes >= 0)  # pyfunc has no categoricals
                        for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)})
        score = float(model.predict(X)[0])
        producer.produce(topics["naive"], orjson.dumps({"event_id": orjson.loads(msg.value())["event_id"], "score": score}))
        producer.poll(0)
        done += 1
    producer.flush(30)
    consumer.close()
    return m / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=None, help="runs to take the median of (default 5; 1 with --quick)")
    parser.add_argument("--events", type=int, default=None,
                        help="events per throughput run (default 300,000; 50,000 with --quick)")
    args = parser.parse_args(argv)
    n, runs, latency_s, m = (50_000, 1, 5.0, 100) if args.quick else (300_000, 5, 20.0, 300)
    for name, value in (("--runs", args.runs), ("--events", args.events)):
        if value is not None and value < 1:
            parser.error(f"{name} must be at least 1 (got {value})")
    runs, n = args.runs or runs, args.events or n
    settings = load_settings()
    use_stack_login()  # MLflow's login: the variables if set, else the local stack's pipeline account
    bootstrap = settings.kafka_bootstrap
    import mlflow

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    booster = train_booster(rounds=MODEL_ROUNDS)
    results = []
    for run in range(runs):
        tag = f"{run}-{uuid.uuid4().hex[:6]}"
        topics = {**make_topics(admin, tag), **group_topics(admin, tag)}
        model = new_model(client)
        lake = Lake(tempfile.mkdtemp(prefix="bench-serving-lake-"))  # the version's verdict, for the sidecar
        version = register(client, model, booster, lake=lake)
        try:
            records = [(k, v, None) for k, v, _ in events(n, seed=run)]
            produce(bootstrap, topics["in"], records)
            figures = sidecar_run(bootstrap, settings, client, topics, model, version, n, latency_s,
                                  Path(tempfile.gettempdir()) / f"bench-serving-{tag}.log", lake.uri)
            figures["naive_eps"] = naive(bootstrap, topics, f"models:/{model}/{version}", m)
            comparison = ReplicaComparison(settings, client, booster, topics, Path(tempfile.gettempdir()))
            try:
                figures.update(comparison.start(records).measure(n, span_eps, scored))
            finally:
                comparison.close()
        finally:
            for fut in admin.delete_topics(list(topics.values())).values():
                fut.result(30)
        figures["sidecar_vs_passthrough"] = figures["sidecar_eps"] / figures["passthrough_eps"]
        figures["sidecar_vs_naive"] = figures["sidecar_eps"] / figures["naive_eps"]
        figures.update(gil_figures())
        figures["load_avg_1m"] = os.getloadavg()[0]
        results.append(figures)
        print(f"run {run + 1}/{runs}: " + ", ".join(f"{k}={v:,.1f}" for k, v in figures.items()), flush=True)
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    out = {k: round(v, 3) for k, v in med.items() if k not in ("latency_events", "passthrough_before_eps",
                                                                 "passthrough_after_eps")}
    out.update(events=n, runs=runs, date=datetime.now(timezone.utc).isoformat(timespec="seconds"), cores=os.cpu_count(),
               notes=f"median of {runs} run(s); {n:,} events; one sidecar process, batch<={settings.serving_batch_max}/"
                     f"{settings.serving_batch_wait_ms:g} ms (both loops), model "
                     f"{MODEL_ROUNDS} trees depth {MODEL_DEPTH}, nthread 1; passthrough = the mean of "
                     f"one run just before and one just after the sidecar's; throughput over the "
                     f"middle 80% of the outputs by broker append time; naive = {m} events one at a time "
                     f"through mlflow.pyfunc; latency = event produce time to prediction LogAppendTime at 5,000/s "
                     f"offered for {latency_s:g} s after {LATENCY_WARMUP_S:g} s of warm-up; gil_handovers = "
                     f"times in 0.2 s a thread back from C got the GIL from one running Python, median of 5 "
                     f"each, interleaved, per run; two_replica_ratio = two sidecar replicas of one group over one "
                     f"sidecar, one after the other on the same {n:,} events in a topic of {GROUP_PARTITIONS} "
                     f"partitions, released to the two replicas once they share them; ratios are per "
                     f"run, then the median; the broker and other work share the same {os.cpu_count()} cores (load_avg_1m)")
    print(f"\n{'figure':<28}{'median':>14}   target")
    rows = [("passthrough events/s", out["passthrough_eps"], "ceiling"),
            ("sidecar events/s", out["sidecar_eps"], ">= 50,000"),
            ("naive events/s", out["naive_eps"], "baseline"),
            ("sidecar / passthrough", out["sidecar_vs_passthrough"], ">= 0.6"),
            ("sidecar / naive", out["sidecar_vs_naive"], ">= 10"),
            ("p50 ms at 5k/s", out["p50_ms_at_5k"], ""), ("p99 ms at 5k/s", out["p99_ms_at_5k"], "< 50"),
            ("GIL hand-overs/0.2 s, 5 ms", out["gil_handovers_default"], "Python's default"),
            (f"GIL hand-overs/0.2 s, {SWITCH_INTERVAL_S * 1000:g} ms", out["gil_handovers_tuned"], "the sidecar's"),
            ("GIL tuned / default", out["gil_tuned_vs_default"], ""),
            (f"1 replica events/s ({GROUP_PARTITIONS} p.)", out["one_replica_eps"], ""),
            ("2 replicas events/s", out["two_replica_eps"], ""),
            ("2 replicas / 1", out["two_replica_ratio"], "bounded by the cores")]
    for name, value, target in rows:
        print(f"{name:<28}{value:>14,.2f}   {target}")
    save_figures("serving", out, args.quick, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
