"""The Celery workers of the embedded stack's CeleryExecutor (`CONTINUUM_EXECUTOR=celery`): two
`airflow celery worker` processes on this machine, as `docker compose up --scale airflow-worker=2` runs
two containers. Each takes tasks from the broker (services/redis.py) under its own name, so a task's
worker can be told apart; how many tasks each runs at once is Airflow's own
`AIRFLOW__CELERY__WORKER_CONCURRENCY` (default 16)."""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
from pathlib import Path

from processes import Service, StackError, group_of, log, spawn, wait
from services import executor, redis
from services.airflow import airflow_env
from services.airflow import ready as airflow_ready

WORKERS = 2
CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"


def names() -> list[str]:
    """The workers' Celery node names (`worker1@host`, ...): what `celery inspect` and the logs call them."""
    return [f"worker{i}@{socket.gethostname()}" for i in range(1, WORKERS + 1)]


def inspect(command: str, timeout: float = 2.0) -> subprocess.CompletedProcess:
    """`celery inspect <command>` against the stack's workers, through the broker (ping, stats, active)."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("celery")), "--app", CELERY_APP, "inspect", command, "--json",
         "--timeout", str(timeout), "--destination", ",".join(names())],
        env=airflow_env(), capture_output=True, text=True, timeout=60 + timeout)


def ready() -> bool:
    """Every worker answers a ping through the broker."""
    if not executor.celery() or not redis.ready():
        return False
    return set(names()) <= set(replies(inspect("ping")))


def replies(answer: subprocess.CompletedProcess) -> dict:
    """An `inspect` command's replies by node name ({} when no worker answered)."""
    import json

    # the JSON is the last line: Airflow's configuration may log before it
    lines = [line for line in answer.stdout.splitlines() if line.startswith("{")] if answer.returncode == 0 else []
    try:
        found = json.loads(lines[-1]) if lines else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def start() -> None:
    if not executor.celery():
        raise StackError("the Celery workers run tasks for the CeleryExecutor only: set CONTINUUM_EXECUTOR=celery "
                         "(and start airflow with it), or leave them out")
    if not airflow_ready():
        raise StackError("the workers need Airflow (its migrated database and API server): start it first "
                         "(`python docker/local/stack.py up airflow`, which starts the workers too)")
    airflow = shlex.quote(str(Path(sys.executable).with_name("airflow")))
    # on one machine the API server reads task logs from the shared folder: the workers serve none
    spawn("workers", group_of([f"{airflow} celery worker --celery-hostname {shlex.quote(name)} --skip-serve-logs"
                               for name in names()]), env=airflow_env())
    took = wait("workers", ready, 120)
    log(f"{WORKERS} celery workers ready ({', '.join(names())}) in {took:.1f}s")


SERVICE = Service(start, ready, f"{WORKERS} celery workers", optional=not executor.celery())
