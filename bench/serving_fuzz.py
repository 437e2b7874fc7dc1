"""Benchmark: the sidecar's stream throughput while its HTTP port takes a stream of bad requests.

    python bench/serving_fuzz.py            # 1,200,000 events per phase, 3 pairs at 500 bad requests/s,
                                            # then one pair with a flood, for the record
    python bench/serving_fuzz.py --rate 0   # the 3 pairs with a flood
    python bench/serving_fuzz.py --quick    # 50,000 events, one pair (the test suite's smoke check)

The sidecar's HTTP port is served by a process of its own at the lowest CPU priority (ml/serving/port.py):
the figures include how many bad requests it answered while the stream ran flat out and how long they took.
A phase fills a fresh topic with live-stamped telemetry, starts a sidecar (its own consumer group) on
it with the champion already promoted, and counts its predictions per second over the middle 80% of
their broker append times (as bench/serving.py does). A quiet phase and a fuzzed phase alternate; in the
fuzzed one, 8 client threads post, at `--rate` requests a second together, the generated bad requests of tests/integration/http_fuzz.py (15
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
# Bad requests a second from all clients together: about 1.8M an hour, a hostile client well past any
# real one's error rate; past it the answer is a rate limit in front of the port, not the sidecar's. A
# flood is measured beside it, in the same run.
RATE = 500.0


class Fuzzer:
    """Client threads posting bad requests in a loop until stopped; counts every answer's status."""

    def __init__(self, port: int, corpus: list, rate: float) -> None:
        self.port, self.corpus, self.stop = port, corpus, threading.Event()
        self.every_s = CLIENTS / rate if rate else 0.0  # each client's pace; 0: as fast as it gets answers
        self.answers: Counter = Counter()
        self.wrong: Counter = Counter()
        self.answered: list[tuple[float, float]] = []  # (epoch seconds answered, seconds it took), every answer
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(CLIENTS)]

    def start(self) -> "Fuzzer":
        self.began, self.cpu_began = time.monotonic(), time.process_time()
        for t in self._threads:
            t.start()
        return self

    def _run(self, offset: int) -> None:
        i, due = offset, time.monotonic() + self.every_s * offset / CLIENTS
        while not self.stop.is_set():
            if self.every_s:
                due += self.every_s
                if self.stop.wait(max(0.0, due - time.monotonic())):
                    break
            family, raw, allowed = self.corpus[i % len(self.corpus)]
            i += CLIENTS
            sent = time.monotonic()
            try:
                status = send(self.port, raw, timeout_s=15)
            except ConnectionRefusedError:  # not listening yet
                time.sleep(0.01)
                continue
            took = time.monotonic() - sent
            with self._lock:
                self.answered.append((time.time(), took))
                self.answers[status] += 1
                if status not in allowed:
                    self.wrong[(family, status)] += 1

    def finish(self) -> None:
        self.stop.set()
        self.seconds = time.monotonic() - self.began
        self.cpu_s = time.process_time() - self.cpu_began  # the clients' (this process is idle otherwise)
        for t in self._threads:
            t.join(30)


def quantiles(seconds: list[float]) -> list[float]:
    """[p50, p99] of some durations, [nan, nan] without any."""
    if not seconds:
        return [float("nan")] * 2
    ordered = sorted(seconds)
    return [ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in (0.5, 0.99)]


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user and system) a live process and its live children (the sidecar's HTTP port
    process) have used so far, from /proc (Linux)."""
    children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
    total = 0.0
    for one in (pid, *children):
        fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def phase(settings, client, admin, model: str, lake: str, n: int, seed: int, fuzz: list | None, log: Path,
          rate: float = 0.0) -> dict:
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
        fuzzer = Fuzzer(sidecar.port, fuzz, rate).start() if fuzz else None
        sidecar.start()
        try:
            sidecar.wait_health(timeout_s=120)
            deadline = time.monotonic() + 600
            while scored(sidecar) < n and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            if fuzzer:
                fuzzer.finish()
            sidecar_cpu = cpu_seconds(sidecar.proc.pid)
            sidecar.close()
        rows = read_topic(settings.kafka_bootstrap, names["pred"], until=lambda r: len(r) >= n)
        eps = span_eps(rows)
    finally:
        for fut in admin.delete_topics(list(names.values())).values():
            fut.result(30)
    out = {"eps": eps, "sidecar_cpu_s": sidecar_cpu}
    if fuzzer:
        out.update(clients_cpu_s=fuzzer.cpu_s, fuzz_seconds=fuzzer.seconds)
        out.update(requests=sum(fuzzer.answers.values()),
                   per_s=sum(fuzzer.answers.values()) / max(fuzzer.seconds, 1e-9), wrong=sum(fuzzer.wrong.values()),
                   busy=fuzzer.answers.get(503, 0), wrong_kinds=dict(fuzzer.wrong))
        # the answers while the stream ran flat out (the window its throughput is measured over), and how long
        # each took: the port yields the cores to the stream, so this is where its answers slow down
        stamps = sorted(r["timestamp"] for r in rows)
        lo, hi = stamps[len(stamps) // 10] / 1000, stamps[len(stamps) * 9 // 10] / 1000
        during = [took for at, took in fuzzer.answered if lo <= at <= hi]
        out.update(per_s_streaming=len(during) / max(hi - lo, 1e-3),
                   answer_ms_streaming=[1000 * q for q in quantiles(during)],
                   answer_ms_quiet=[1000 * q for q in quantiles([t for at, t in fuzzer.answered if not lo <= at <= hi])])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--rate", type=float, default=RATE,
                        help=f"bad requests per second from all clients together (default {RATE:g}); 0: a flood, "
                             "each client sending its next request as soon as it has an answer")
    args = parser.parse_args(argv)
    if args.rate < 0:
        parser.error(f"--rate {args.rate:g} is negative; give bad requests per second, or 0 for a flood")
    n, pairs = (50_000, 1) if args.quick else (1_200_000, 3)
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

    def pair(number: int, rate: float) -> tuple[float, dict, float, float]:
        order = (False, True) if number % 2 == 0 else (True, False)  # alternate, so drift in load cancels
        got = {f: phase(settings, client, admin, model, lake.uri, n, number, corpus if f else None,
                        logs / f"bench-fuzz-{number}-{int(f)}.log", rate) for f in order}
        ratio = got[True]["eps"] / got[False]["eps"]
        print(f"pair {number + 1} ({f'{rate:g} bad requests/s' if rate else 'flood'}): quiet {got[False]['eps']:,.0f} "
              f"eps, fuzzed {got[True]['eps']:,.0f} eps ({got[True]['requests']:,} bad requests, "
              f"{got[True]['per_s']:,.0f}/s, {got[True]['busy']:,} answered 503, {got[True]['wrong']} outside "
              f"their allowed statuses; {got[True]['per_s_streaming']:,.0f}/s while the stream ran flat out, answered "
              f"in p50 {got[True]['answer_ms_streaming'][0]:.1f} / p99 {got[True]['answer_ms_streaming'][1]:.1f} ms, "
              f"p50 {got[True]['answer_ms_quiet'][0]:.1f} ms outside it), ratio {ratio:.3f}; the clients used {got[True]['clients_cpu_s']:.1f} CPU s "
              f"in {got[True]['fuzz_seconds']:.1f} s, the sidecar {got[True]['sidecar_cpu_s']:.1f} CPU s against "
              f"{got[False]['sidecar_cpu_s']:.1f} quiet", flush=True)
        return got[False]["eps"], got[True], ratio, got[False]["sidecar_cpu_s"]

    ratios, quiet, fuzzed, quiet_cpu = [], [], [], []
    for number in range(pairs):
        q, f, r, c = pair(number, args.rate)
        quiet.append(q), fuzzed.append(f), ratios.append(r), quiet_cpu.append(c)
    flood = None if args.quick or not args.rate else pair(pairs, 0.0)  # the same run, for the record
    wrong = sum(f["wrong"] for f in fuzzed)
    out = {"quiet_eps": round(statistics.median(quiet), 1),
           "fuzzed_eps": round(statistics.median(f["eps"] for f in fuzzed), 1),
           "fuzzed_vs_quiet": round(statistics.median(ratios), 3),
           "bad_requests": sum(f["requests"] for f in fuzzed),
           "bad_requests_per_s": round(statistics.median(f["per_s"] for f in fuzzed), 1),
           "bad_requests_per_s_streaming": round(statistics.median(f["per_s_streaming"] for f in fuzzed), 1),
           "answer_p50_ms_streaming": round(statistics.median(f["answer_ms_streaming"][0] for f in fuzzed), 1),
           "answer_p99_ms_streaming": round(statistics.median(f["answer_ms_streaming"][1] for f in fuzzed), 1),
           "answer_p50_ms_otherwise": round(statistics.median(f["answer_ms_quiet"][0] for f in fuzzed), 1),
           "answered_busy": sum(f["busy"] for f in fuzzed),
           "answers_outside_allowed": wrong,
           # what bounds the ratio on one machine: the cores the clients themselves take, and what the
           # sidecar spends beyond its quiet phase (the HTTP port's share), each per bad request
           "clients_cpu_share": round(statistics.median(f["clients_cpu_s"] / f["fuzz_seconds"] for f in fuzzed)
                                      / (os.cpu_count() or 1), 3),
           "clients_cpu_ms_per_request": round(1000 * statistics.median(f["clients_cpu_s"] / max(f["requests"], 1)
                                                                        for f in fuzzed), 2),
           "sidecar_extra_cpu_ms_per_request": round(1000 * statistics.median(
               (f["sidecar_cpu_s"] - q) / max(f["requests"], 1) for f, q in zip(fuzzed, quiet_cpu)), 2),
           "flood_vs_quiet": round(flood[2], 3) if flood else None,
           "flood_requests_per_s": round(flood[1]["per_s"], 1) if flood else None,
           "flood_requests_per_s_streaming": round(flood[1]["per_s_streaming"], 1) if flood else None, "events": n, "pairs": pairs, "load_avg_1m": os.getloadavg()[0],
           "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cores": os.cpu_count(),
           "notes": f"median of {pairs} pair(s) of phases, quiet and fuzzed alternating; {n:,} events per phase, "
                    f"one sidecar process per phase; {CLIENTS} fuzz client threads sending {args.rate:g} bad "
                    "requests/s together (flood_vs_quiet: one more pair with each client sending its next "
                    "request as soon as it has an answer, no target) in the benchmark's process "
                    "share the same cores as the sidecar and the broker; throughput over the middle 80% of "
                    "the predictions by broker append time. The sidecar's HTTP port is a process of its own at "
                    "the lowest CPU priority, so when both want the cores the stream gets them (*_streaming: the "
                    "bad requests answered within that window and how long they took; the clients fall behind "
                    "their pace while the sidecar starts and catch up there); sidecar_extra_cpu_ms_per_request "
                    "counts both processes"}
    print(f"\n{'figure':<34}{'value':>14}   target")
    for name, value, target in (("quiet events/s", out["quiet_eps"], "baseline"),
                                ("fuzzed events/s", out["fuzzed_eps"], ""),
                                ("fuzzed / quiet", out["fuzzed_vs_quiet"], ">= 0.8"),
                                ("bad requests sent", out["bad_requests"], ""),
                                ("bad requests/s", out["bad_requests_per_s"], f"{args.rate:g}"),
                                ("... while the stream ran flat out", out["bad_requests_per_s_streaming"], ""),
                                ("answer p99 ms, meanwhile", out["answer_p99_ms_streaming"], ""),
                                ("flood / quiet", out["flood_vs_quiet"] or 0.0, "for the record"),
                                ("answers outside allowed statuses", wrong, "0")):
        print(f"{name:<34}{value:>14,.3f}   {target}")
    if wrong:
        print(f"answers outside their allowed statuses: {[f['wrong_kinds'] for f in fuzzed]}")
    save_figures("serving_fuzz", out, args.quick, args.out)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
