"""The serving sidecar (`continuum-serve`) pointed at the stack's Kafka, MLflow and lake, in one replica or
several of one consumer group.

    CONTINUUM_SERVING_REPLICAS   sidecar processes (default 1, at most the telemetry topic's partitions): they
                                 share the `continuum-serving` group, which splits the partitions between
                                 them and moves a stopped or killed one's partitions to the others
The first replica answers on CONTINUUM_SERVING_PORT (8000) and logs to serving.log; replica n on the port
n-1 above it, as `serving-n` (its log serving-n.log). `down serving` stops them all.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

from credentials import secret
from processes import LOCAL, ROOT, Service, StackError, log, pid, spawn, wait
from services.kafka import KAFKA_PORT, TOPICS
from services.mlflow import MLFLOW_PORT, credentials

SERVING_PORT = int(os.environ.get("CONTINUUM_SERVING_PORT", "8000"))


def replicas() -> list[tuple[str, int]]:
    """Each replica's process name and HTTP port, as many as CONTINUUM_SERVING_REPLICAS asks."""
    value, most = os.environ.get("CONTINUUM_SERVING_REPLICAS") or "1", TOPICS["telemetry"]
    if not value.isdigit() or not 1 <= int(value) <= most:
        raise StackError(f"CONTINUUM_SERVING_REPLICAS={value!r}: give a whole number from 1 to {most} (the telemetry "
                         f"topic's partitions; a replica past them would own none), e.g. CONTINUUM_SERVING_REPLICAS=2")
    return [("serving" if i == 0 else f"serving-{i + 1}", SERVING_PORT + i) for i in range(int(value))]


def answers(port: int) -> bool:
    """A sidecar answers on `port` (503 until a champion exists still means it is up)."""
    import urllib.error

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2.0):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def ready() -> bool:
    """Every replica asked for answers, and no replica past them runs (a smaller count asks for a restart)."""
    wanted = replicas()
    return all(answers(port) for _, port in wanted) and pid(f"serving-{len(wanted) + 1}") is None


def start() -> None:
    """The sidecar replicas (`continuum-serve`): each waits for a champion, then scores its share of the
    telemetry partitions."""
    wanted = replicas()
    env = {"CONTINUUM_KAFKA_BOOTSTRAP": f"127.0.0.1:{KAFKA_PORT}",
           "CONTINUUM_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{MLFLOW_PORT}",
           "CONTINUUM_SERVING_POLL_S": "5",
           "CONTINUUM_LAKE_URI": str(LOCAL / "lake"),  # the model verdicts promote_model records
           "PYTHONPATH": str(ROOT),
           # POST /predict's bearer token: generated at the first start, shown by `make status`
           "CONTINUUM_SERVING_TOKEN": secret("serving-token")}
    # it only reads the registry: the reader account, whatever the caller's environment holds
    env = {**env, **{k: v for k, v in os.environ.items() if k in env}, **credentials("reader")}
    command = [str(Path(sys.executable).with_name("continuum-serve"))]
    for name, port in wanted:  # all started before any is waited for: they start up side by side
        spawn(name, command, {**env, "CONTINUUM_SERVING_PORT": str(port)})
    for name, port in wanted:
        took = wait(name, lambda port=port: answers(port), 60)
        log(f"serving sidecar {name} up on http://127.0.0.1:{port}/healthz in {took:.1f}s "
            "(it scores once a champion exists)")


SERVICE = Service(start, ready, f"http://127.0.0.1:{SERVING_PORT}")
