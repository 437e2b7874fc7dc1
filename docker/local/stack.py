"""The embedded local stack: Kafka (KRaft), MLflow, an S3 endpoint, PostgreSQL and Airflow, as local processes.

    python docker/local/stack.py up [SERVICE ...] [--started-file F]
    python docker/local/stack.py down [SERVICE ...] [--started-file F]
    python docker/local/stack.py status
    python docker/local/stack.py reset-airflow     # stop Airflow, empty its metadata database (make demo)
    python docker/local/stack.py pause|resume --started-file F   # make test: the user's stack stops, then restarts

PostgreSQL holds Airflow's metadata (as in docker-compose); it is installed with apt-get when it is
missing on a Debian machine run as root, and otherwise named as a prerequisite. Airflow runs the
LocalExecutor; with CONTINUUM_EXECUTOR=celery the CeleryExecutor, whose Redis broker and two workers
start and stop with Airflow (services/executor.py).

Every service listens on loopback; pid files live in .local/run, logs in .local/logs. `up` starts only
what is not already healthy and can record what it started, so `make test` stops exactly that.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from credentials import SECRETS, stored
from processes import LOCAL, LOGS, StackError, log, pid, port_open, stop
from services import airflow, executor, kafka, live, mlflow, postgres, redis, s3, serving, workers

SERVICES = {
    "kafka": kafka.SERVICE,
    "mlflow": mlflow.SERVICE,
    "s3": s3.SERVICE,
    "postgres": postgres.SERVICE,
    "redis": redis.SERVICE,
    "airflow": airflow.SERVICE,
    "workers": workers.SERVICE,
    "serving": serving.SERVICE,
    "live": live.SERVICE,
}


def up(names: list[str], started_file: Path | None, own: bool = False) -> None:
    """Start what is not already healthy. With `own`, a healthy service that this stack folder did not start
    (another checkout's, or one started by hand) is an error rather than something to use: the test suite
    runs on services of its own, never on a user's data."""
    started = []
    for name in names:
        if own and pid(name) is None and _taken(SERVICES[name].url):
            raise StackError(f"{name} at {SERVICES[name].url} is running, but not from {LOCAL}: stop it "
                             "(`make down` in the checkout that started it) so the tests can start their own")
        if SERVICES[name].ready():
            log(f"{name} already running at {SERVICES[name].url}")
            continue
        stop(name)  # a stale process that is not healthy
        started.append(name)
        if started_file:  # recorded before the start, so a failed start is still stopped by `down`
            started_file.parent.mkdir(parents=True, exist_ok=True)
            started_file.write_text("\n".join(started))
        SERVICES[name].start()


def _taken(url: str) -> bool:
    """Whether something listens on the port of a service's address (one without a port: never)."""
    found = re.search(r":(\d+)", url)
    return bool(found) and port_open(int(found.group(1)))


def down(names: list[str], started_file: Path | None) -> None:
    if started_file:
        names = started_file.read_text().split() if started_file.exists() else []
        started_file.unlink(missing_ok=True)
    for name in reversed(names):
        log(f"{name} {'stopped' if stop(name) else 'was not running'}")


def pause(record: Path) -> None:
    """Stop every service this stack folder runs and record which, for `resume` (their data stays)."""
    running = [name for name in SERVICES if pid(name) is not None]
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text("\n".join(running))
    if running:
        log(f"pausing the running stack ({', '.join(running)}); its data stays in {LOCAL}, and it restarts "
            "when the tests end")
    for name in reversed(running):
        stop(name)


def resume(record: Path) -> None:
    """Start again what `pause` stopped."""
    names = record.read_text().split() if record.exists() else []
    if names:
        log(f"resuming the stack the tests paused ({', '.join(names)})")
        up(names, None)
    record.unlink(missing_ok=True)


def status() -> bool:
    healthy = True
    for name, svc in SERVICES.items():
        ok = svc.ready()
        running = pid(name)
        state = "healthy" if ok else ("starting/unhealthy" if running else "stopped")
        print(f"{name:8} {state:18} {svc.url:26} pid={running or '-'}  log={LOGS / (name + '.log')}")
        healthy &= ok or svc.optional
    if SERVICES["airflow"].ready():
        print(f"airflow login: {airflow.login()}")
    secrets = stored()
    if secrets:  # the only place the stack shows its generated secrets
        print(f"secrets (generated; files in {SECRETS}, mode 0600): "
              + ", ".join(f"{name} = {value}" for name, value in secrets.items()))
    return healthy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "status", "reset-airflow", "pause", "resume"],
                        help="reset-airflow: stop Airflow and empty its metadata database (the demo's clean slate)")
    parser.add_argument("services", nargs="*", help=f"any of {', '.join(SERVICES)} (default: all but live for up, "
                                                    "all for down)")
    parser.add_argument("--started-file", type=Path, help="record (up, pause) or read (down, resume) the services "
                                                          "this run started or paused")
    parser.add_argument("--own", action="store_true", help="up: a healthy service not started from this stack "
                                                           "folder is an error, not used")
    args = parser.parse_args(argv)
    unknown = [s for s in args.services if s not in SERVICES]
    if unknown:
        parser.error(f"unknown service {', '.join(unknown)}; choose from {', '.join(SERVICES)}")
    # named, any service; by default, those that are not optional (`up`) or all of them (`down`)
    names = args.services or [n for n, svc in SERVICES.items() if args.command == "down" or not svc.optional]
    try:
        if args.command in ("up", "down"):
            names = executor.with_companions(names)
        if args.command in ("pause", "resume") and not args.started_file:
            parser.error(f"{args.command} needs --started-file FILE (where the paused services are recorded)")
        if args.command == "up":
            up(names, args.started_file, own=args.own)
        elif args.command == "pause":
            pause(args.started_file)
        elif args.command == "resume":
            resume(args.started_file)
        elif args.command == "reset-airflow":
            airflow.reset()
        elif args.command == "down":
            down(names, args.started_file)
        else:
            return 0 if status() else 1
    except (StackError, subprocess.CalledProcessError) as exc:
        print(f"[stack] error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
