"""Benchmark: the sidecar's stream throughput while its HTTP port takes a flood of bad requests.

    python bench/serving_fuzz.py            # 400,000 events per phase, 3 pairs of phases
    python bench/serving_fuzz.py --quick    # 50,000 events, one pair (the test suite's smoke check)

A phase fills a fresh topic with live-stamped telemetry, starts a sidecar (its own consumer group) on
it with the champion already promoted, and counts its predictions per second over the middle 80% of
their broker append times (as bench/serving.py does). A quiet phase and a fuzzed phase alternate; in the
fuzzed one, 8 client threads post the generated bad requests of tests/integration/http_fuzz.py (15
kinds: no or a wrong token, broken JSON, NaN, wrong types, too many events, declared lengths over the
limit, unknown paths, broken request lines) from before the sidecar starts until its last prediction,
and every answer is checked: a 4xx, or a 503 from a full server, never a 500 or none. The figure is the
median of the per-pair ratios fuzzed / quiet (target: at least 0.8, within 20%). Writes
bench/results/serving_fuzz.json (with --quick only given --out).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import orjson
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ml.lake import Lake  # noqa: E402
from ml.registry import set_champion  # noqa: E402
from ml.settings import load_settings  # noqa: E402
from ml.settings.login import use_stack_login  # noqa: E402
from results_file import save_figures  # noqa: E402
from serving import APPEND_TIME, MODEL_ROUNDS, scored, span_eps  # noqa: E402
from tests.integration.http_fuzz import bad_requests, send  # noqa: E402
from tests.integration.serving_models import CONTRACT, new_model, register, train_booster  # noqa: E402
from tests.integration.serving_process import SidecarProcess  # noqa: E402
from tests.integration.serving_topics import events, produce, read_topic  # noqa: E402

TOKEN = uuid.uuid4().hex
CLIENTS = 8


class Fuzzer:
    """Client threads posting bad requests in a loop until stopped; counts every answer's status."""

    def __init__(self, port: int, corpus: list) -> None:
        self.port, self.corpus, self.stop = port, corpus, threading.Event()
        self.answers: Counter = Counter()
        self.wrong: Counter = Counter()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(CLIENTS)]

    def start(self) -> "Fuzzer":
        for t in self._threads:
            t.start()
        return self

    def _run(self, offset: int) -> None:
        i = offset
        while not self.stop.is_set():
            family, raw, allowed = self.corpus[i % len(self.corpus)]
            i += CLIENTS
            try:
                status = send(self.port, raw, timeout_s=15)
            except ConnectionRefusedError:  # not listening yet
                time.sleep(0.01)
                continue
            with self._lock:
                self.answers[status] += 1
                if status not in allowed:
                    self.wrong[(family, status)] += 1

    def finish(self) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(30)


def phase(settings, client, admin, model: str, lake: str, n: int, seed: int, fuzz: list | None, log: Path) -> dict:
    run = uuid.uuid4().hex[:8]
    names = {k: f"bench.fuzz.{run}.{k}" for k in ("in", "pred", "alerts", "dlq", "control", "shadow")}
    for fut in admin.create_topics([NewTopic(v, num_partitions=3 if k in ("in", "pred") else 1, replication_factor=1,
                                             config=APPEND_TIME) for k, v in names.items()]).values():
        fut.result(30)
    env = {"CONTINUUM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "CONTINUUM_MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
           "CONTINUUM_MODEL_NAME": model, "CONTINUUM_LAKE_URI": lake, "CONTINUUM_SERVING_TOKEN": TOKEN,
           "CONTINUUM_SERVING_GROUP": f"bench-fuzz-{run}", "CONTINUUM_TOPIC_TELEMETRY": names["in"],
           "CONTINUUM_TOPIC_PREDICTIONS": names["pred"], "CONTINUUM_TOPIC_ALERTS": names["alerts"],
           "CONTINUUM_TOPIC_DLQ": names["dlq"], "CONTINUUM_TOPIC_CONTROL": names["control"],
           "CONTINUUM_TOPIC_PREDICTIONS_SHADOW": names["shadow"]}
    try:
        produce(settings.kafka_bootstrap, names["in"], [(k, v, None) for k, v, _ in events(n, seed=seed)])
        sidecar = SidecarProcess(env, log)
        fuzzer = Fuzzer(sidecar.port, fuzz).start() if fuzz else None
        sidecar.start()
        try:
            sidecar.wait_health(timeout_s=120)
            deadline = time.monotonic() + 600
            while scored(sidecar) < n and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            if fuzzer:
                fuzzer.finish()
            sidecar.close()
        eps = span_eps(read_topic(settings.kafka_bootstrap, names["pred"], until=lambda r: len(r) >= n))
    finally:
        for fut in admin.delete_topics(list(names.values())).values():
            fut.result(30)
    out = {"eps": eps}
    if fuzzer:
        out.update(requests=sum(fuzzer.answers.values()), wrong=sum(fuzzer.wrong.values()),
                   busy=fuzzer.answers.get(503, 0), wrong_kinds=dict(fuzzer.wrong))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    n, pairs = (50_000, 1) if args.quick else (400_000, 3)
    settings = load_settings()
    use_stack_login()  # MLflow's login: the variables if set, else the local stack's pipeline account
    import mlflow

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    model, lake = new_model(client), Lake(tempfile.mkdtemp(prefix="bench-fuzz-lake-"))
    version = register(client, model, train_booster(rounds=MODEL_ROUNDS), lake=lake)
    set_champion(client, model, version, "bench", "the fuzz benchmark's model", lake)  # before any sidecar
    event = orjson.loads(events(1)[0][1])
    corpus = bad_requests(event, TOKEN, n=3000, numeric=[f.name for f in CONTRACT.features if f.max is not None],
                          required=[CONTRACT.event_id, CONTRACT.entity_key, CONTRACT.event_time]
                          + [f.name for f in CONTRACT.features if not f.nullable])
    logs = Path(tempfile.gettempdir())
    ratios, quiet, fuzzed = [], [], []
    for pair in range(pairs):
        order = (False, True) if pair % 2 == 0 else (True, False)  # alternate, so drift in load cancels
        got = {f: phase(settings, client, admin, model, lake.uri, n, pair, corpus if f else None,
                        logs / f"bench-fuzz-{pair}-{int(f)}.log") for f in order}
        quiet.append(got[False]["eps"])
        fuzzed.append(got[True])
        ratios.append(got[True]["eps"] / got[False]["eps"])
        print(f"pair {pair + 1}/{pairs}: quiet {got[False]['eps']:,.0f} eps, fuzzed {got[True]['eps']:,.0f} eps "
              f"({got[True]['requests']:,} bad requests, {got[True]['busy']:,} answered 503, "
              f"{got[True]['wrong']} outside their allowed statuses), ratio {ratios[-1]:.3f}", flush=True)
    wrong = sum(f["wrong"] for f in fuzzed)
    out = {"quiet_eps": round(statistics.median(quiet), 1),
           "fuzzed_eps": round(statistics.median(f["eps"] for f in fuzzed), 1),
           "fuzzed_vs_quiet": round(statistics.median(ratios), 3),
           "bad_requests": sum(f["requests"] for f in fuzzed), "answered_busy": sum(f["busy"] for f in fuzzed),
           "answers_outside_allowed": wrong, "events": n, "pairs": pairs, "load_avg_1m": os.getloadavg()[0],
           "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cores": os.cpu_count(),
           "notes": f"median of {pairs} pair(s) of phases, quiet and fuzzed alternating; {n:,} events per phase, "
                    f"one sidecar process per phase; {CLIENTS} fuzz client threads in the benchmark's process "
                    "share the same cores as the sidecar and the broker; throughput over the middle 80% of "
                    "the predictions by broker append time"}
    print(f"\n{'figure':<34}{'value':>14}   target")
    for name, value, target in (("quiet events/s", out["quiet_eps"], "baseline"),
                                ("fuzzed events/s", out["fuzzed_eps"], ""),
                                ("fuzzed / quiet", out["fuzzed_vs_quiet"], ">= 0.8"),
                                ("bad requests sent", out["bad_requests"], ""),
                                ("answers outside allowed statuses", wrong, "0")):
        print(f"{name:<34}{value:>14,.3f}   {target}")
    if wrong:
        print(f"answers outside their allowed statuses: {[f['wrong_kinds'] for f in fuzzed]}")
    save_figures("serving_fuzz", out, args.quick, args.out)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
