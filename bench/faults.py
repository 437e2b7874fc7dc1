"""Benchmark: the fault suite at size, on a stack of its own, with traffic flowing through a real sidecar.

    python bench/faults.py            # 1,000 events/s on the stream, hours of 200,000 events
    python bench/faults.py --quick    # the test suite's size (200 events/s, hours of 2,000 events)

The same code as tests/integration/test_faults.py (`tests/integration/faults.py`): the broker restarted
while the sidecar scores, MLflow stopped during the swap to a new champion, the S3 endpoint stopped
during an offload's publish, an offload killed between two of its files, and retrain_model's and
promote_model's tasks killed half-way and retried. Each fault's events lost, repeats, partial lake files
and recovery time are printed and written to bench/results/faults.json (a --quick run only with --out).
The services the other tools use are not touched: the suite starts its own Kafka, MLflow and S3 endpoint.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from results_file import save_figures  # noqa: E402
from tests.integration.faults import FULL, QUICK, run_faults, summary  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the test suite's size")
    parser.add_argument("--rate", type=float, help="events per second on the sidecar's stream")
    parser.add_argument("--hour-events", type=int, help="events in each offloaded hour")
    parser.add_argument("--out", type=Path, help="where to write the figures (default bench/results/faults.json; "
                                                 "a --quick run writes only when given this)")
    args = parser.parse_args(argv)
    for flag, value in (("--rate", args.rate), ("--hour-events", args.hour_events)):
        if value is not None and value < 1:
            parser.error(f"{flag} must be at least 1 (got {value:g})")
    plan = QUICK if args.quick else FULL
    plan = replace(plan, rate=args.rate or plan.rate, hour_events=args.hour_events or plan.hour_events)
    for key, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(key, value)  # the suite's S3 endpoint (moto) takes any credentials
    with tempfile.TemporaryDirectory(prefix="continuum-faults-") as tmp:
        records = run_faults(plan, Path(tmp))
    figures = {**summary(records), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "cores": os.cpu_count(),
               "notes": (f"one run; {plan.rate:g} live events/s through one sidecar (micro-batches of at most "
                         f"{plan.batch_max}), offloaded hours of {plan.hour_events:,} events on the S3 endpoint "
                         "(moto); Kafka, MLflow and the S3 endpoint of a stack of the suite's own, on the same "
                         "cores; recovery_s: from the service's return (or the kill) until the system was whole")}
    print(f"{'fault':28} {'lost':>6} {'dups':>6} {'partial':>8} {'recovery_s':>11}  survived")
    for r in records:
        recovery = "-" if r.recovery_s is None else f"{r.recovery_s:.1f}"
        print(f"{r.name:28} {r.lost:>6} {r.duplicates:>6} {r.partial_files:>8} {recovery:>11}  {r.survived}")
    print(f"survived {figures['faults_survived']} of {figures['faults_total']} (target: all, 0 lost, 0 partial files)")
    save_figures("faults", figures, args.quick, args.out)
    return 0 if figures["faults_survived"] == figures["faults_total"] else 1


if __name__ == "__main__":
    sys.exit(main())
