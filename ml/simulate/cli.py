"""`continuum-simulate`: produce machine telemetry and late labels to Kafka.

    continuum-simulate replay --start 2026-11-20T00:00Z --end 2026-11-21T00:00Z --rate 20
    continuum-simulate live --rate 50 --duration 600 --scenario covariate@+5m
    continuum-simulate replay --start now-1d --end now-2h --scenario bad_records:rate=0.01

`replay` fills a past range as fast as the broker takes it, each record stamped with its event time
(so backfills have data); `live` emits events at the given rate, stamped now. A summary (JSON) goes
to stdout when done; errors go to stderr with exit status 2 (bad arguments) or 1 (Kafka).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

from ml.contract import ContractError, load_contract
from ml.settings import SettingsError, load_settings
from ml.simulate.labels import LabelDelay
from ml.simulate.produce import BrokerError, KafkaSink, check_broker
from ml.simulate.scenarios import KNOWN, ScenarioError, parse_scenarios, parse_time
from ml.simulate.stream import SimConfig, Simulator


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--devices", type=int, default=100, help="machines in the fleet (default 100)")
    common.add_argument("--rate", type=float, default=10.0, help="events per second of event time (default 10)")
    common.add_argument("--seed", type=int, default=0, help="random seed; same seed and arguments, same events")
    common.add_argument("--scenario", action="append", default=[], metavar="SPEC",
                        help=f"name[@start[..end]][:key=value,...], repeatable; names: {', '.join(KNOWN)}")
    common.add_argument("--label-delay-median", type=float, metavar="MIN", help="median label delay, minutes (default: the contract's)")
    common.add_argument("--label-delay-sigma", type=float, default=0.8, metavar="S", help="log-normal sigma (default 0.8)")
    common.add_argument("--label-delay-min", type=float, metavar="MIN", help="shortest label delay, minutes (default 1)")
    common.add_argument("--label-delay-max", type=float, metavar="MIN", help="longest label delay, minutes (default: the contract's)")
    common.add_argument("--bootstrap", help="Kafka bootstrap servers (default: CONTINUUM_KAFKA_BOOTSTRAP)")
    common.add_argument("--contract", help="contract name or YAML path (default: CONTINUUM_CONTRACT)")
    common.add_argument("--telemetry-topic", help="default: CONTINUUM_TOPIC_TELEMETRY")
    common.add_argument("--outcomes-topic", help="default: CONTINUUM_TOPIC_OUTCOMES")
    common.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the broker (default 10)")
    parser = argparse.ArgumentParser(prog="continuum-simulate", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    replay = sub.add_parser("replay", parents=[common], help="fill a past time range, fast")
    replay.add_argument("--start", required=True, help="ISO-8601 (UTC if no offset), now, or now-2h")
    replay.add_argument("--end", required=True, help="exclusive; not in the future")
    live = sub.add_parser("live", parents=[common], help="emit events now, at --rate per second")
    live.add_argument("--duration", type=float, help="seconds to run (default: until interrupted)")
    live.add_argument("--drain-labels", action="store_true", help="after --duration, wait until every outcome is out")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        sim, window = _simulator(args, settings)
    except (SettingsError, ContractError, ScenarioError, ValueError) as exc:
        parser.error(str(exc))
    bootstrap = args.bootstrap or settings.kafka_bootstrap
    topics = {"telemetry": args.telemetry_topic or settings.topic_telemetry,
              "outcomes": args.outcomes_topic or settings.topic_outcomes}
    try:
        check_broker(bootstrap, list(topics.values()), args.timeout)
    except BrokerError as exc:
        print(f"continuum-simulate: error: {exc}", file=sys.stderr)
        return 1
    return _run(args, sim, window, KafkaSink(bootstrap, topics), topics)


def _simulator(args: argparse.Namespace, settings) -> tuple[Simulator, tuple[int, int] | None]:
    """Check the arguments that need no broker and build the simulator."""
    now = time.time_ns() // 1_000_000
    window = None
    if args.mode == "replay":
        start = parse_time(args.start, flag="--start", now_ms=now)
        end = parse_time(args.end, flag="--end", now_ms=now)
        if end <= start:
            raise ScenarioError(f"--end ({args.end}) must be after --start ({args.start})")
        if end > now:
            raise ScenarioError(f"--end ({args.end}) is in the future; replay fills past ranges, use `live` for now on")
        window, origin = (start, end), start
    else:
        if args.duration is not None and args.duration <= 0:
            raise ScenarioError(f"--duration must be > 0 seconds (got {args.duration:g})")
        origin = now
    if args.devices < 1 or args.rate <= 0 or args.seed < 0:
        raise ScenarioError("--devices must be >= 1, --rate > 0 and --seed >= 0")
    contract = load_contract(args.contract or settings.contract)
    try:
        delay = LabelDelay.for_contract(contract, median_minutes=args.label_delay_median, sigma=args.label_delay_sigma,
                                        min_minutes=args.label_delay_min, max_minutes=args.label_delay_max)
    except ValueError as exc:
        raise ScenarioError(f"--label-delay-*: {exc}") from None
    config = SimConfig(args.devices, args.rate, args.seed, delay, parse_scenarios(args.scenario, origin))
    return Simulator(contract, config), window


def _run(args, sim: Simulator, window, sink: KafkaSink, topics: dict[str, str]) -> int:
    stopping = []
    previous = signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    started = time.perf_counter()
    try:
        if window:
            batches = sim.replay(*window, until_ms=time.time_ns() // 1_000_000)
        else:
            duration = None if args.duration is None else int(args.duration * 1000)
            batches = sim.live(duration, drain=args.drain_labels, stop=lambda: bool(stopping))
        for batch in batches:
            sink.send(batch)
            if stopping and window:
                break
    finally:
        signal.signal(signal.SIGINT, previous)
        report = sink.close()
    seconds = time.perf_counter() - started
    stats = sim.stats
    summary = {
        "mode": args.mode, "topics": topics, "events": stats.events, "bad_records": sum(stats.bad.values()),
        "bad_by_kind": stats.bad, "outcomes": stats.outcomes, "failures": stats.failures,
        "outcomes_not_due": stats.outcomes_not_due, "sent": report.sent, "failed": report.failed,
        "undelivered": report.undelivered, "seconds": round(seconds, 3),
        "events_per_s": round(stats.events / seconds, 1) if seconds > 0 else None,
        "interrupted": bool(stopping),
    }
    print(json.dumps(summary))
    if not report.ok:
        print(f"continuum-simulate: error: {report.failed} failed, {report.undelivered} undelivered: "
              f"{'; '.join(report.errors)}", file=sys.stderr)
        return 1
    return 0
