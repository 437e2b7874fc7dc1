"""continuum-offload: offload given hours of a topic from Kafka to the lake, without Airflow.

    continuum-offload --topic telemetry --hour 2026-11-22T13
    continuum-offload --topic outcomes --start 2026-11-22T00 --end 2026-11-23T00 --lateness-minutes 10
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import timedelta

from ml.contract import ContractError, load_contract
from ml.lake import Lake
from ml.lake.window import Window
from ml.offload.reader import WindowError
from ml.offload.run import offload_hour, window_consumer
from ml.runtime import limit_malloc_arenas, offload_tuning
from ml.settings import SettingsError, load_settings

KINDS = ("telemetry", "outcomes", "predictions")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="continuum-offload", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topic", required=True, choices=KINDS, help="logical topic to offload")
    parser.add_argument("--hour", help="one hour, e.g. 2026-11-22T13 (UTC)")
    parser.add_argument("--start", help="first hour of a range (UTC)")
    parser.add_argument("--end", help="end of the range, exclusive (UTC)")
    parser.add_argument("--lateness-minutes", type=float, default=10.0,
                        help="how late (out of order) a record may arrive and still count for its hour")
    args = parser.parse_args(argv)
    try:
        if args.hour and not (args.start or args.end):
            args.windows = [Window.hour(args.hour)]
        elif args.start and args.end and not args.hour:
            args.windows = Window(Window.hour(args.start).start, Window.hour(args.end).start).hours()
        else:
            parser.error("give either --hour or both --start and --end")
    except ValueError as exc:
        parser.error(f"--hour/--start/--end: {exc}")
    if args.lateness_minutes < 0:
        parser.error("--lateness-minutes: must be >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = _parse(argv)
    try:
        settings = load_settings()
        contract = load_contract(settings.contract)
    except (SettingsError, ContractError) as exc:
        print(f"continuum-offload: {exc}", file=sys.stderr)
        return 2
    lake = Lake.from_settings(settings.lake)
    consumer = window_consumer({"bootstrap.servers": settings.kafka_bootstrap})
    limit_malloc_arenas()  # for the rest of this process: it ends with its offload
    try:
        for window in args.windows:
            manifest = offload_hour(consumer, lake, contract, args.topic, settings.kafka.topics[args.topic], window,
                                    timedelta(minutes=args.lateness_minutes), max_skew=settings.offload.max_event_skew,
                                    tuning=offload_tuning)
            print(json.dumps({k: manifest[k] for k in ("window", "rows", "quarantined", "quarantine_reasons",
                                                           "generation", "content_sha256")}))
    except WindowError as exc:
        print(f"continuum-offload: {exc}", file=sys.stderr)
        return 1
    finally:
        consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
