"""One serving sidecar replica (`continuum-serve`) pointed at the stack's Kafka, MLflow and lake."""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

from credentials import secret
from processes import LOCAL, ROOT, Service, log, spawn, wait
from services.kafka import KAFKA_PORT
from services.mlflow import MLFLOW_PORT, credentials

SERVING_PORT = int(os.environ.get("CONTINUUM_SERVING_PORT", "8000"))


def ready() -> bool:
    """The sidecar answers on its port (503 until a champion exists still means it is up)."""
    import urllib.error

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{SERVING_PORT}/healthz", timeout=2.0):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def start() -> None:
    """One sidecar replica (`continuum-serve`): it waits for a champion, then scores the telemetry topic."""
    env = {"CONTINUUM_KAFKA_BOOTSTRAP": f"127.0.0.1:{KAFKA_PORT}",
           "CONTINUUM_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{MLFLOW_PORT}",
           "CONTINUUM_SERVING_PORT": str(SERVING_PORT), "CONTINUUM_SERVING_POLL_S": "5",
           "CONTINUUM_LAKE_URI": str(LOCAL / "lake"),  # the model verdicts promote_model records
           "PYTHONPATH": str(ROOT),
           # POST /predict's bearer token: generated at the first start, shown by `make status`
           "CONTINUUM_SERVING_TOKEN": secret("serving-token")}
    # it only reads the registry: the reader account, whatever the caller's environment holds
    spawn("serving", [str(Path(sys.executable).with_name("continuum-serve"))], {**env, **{
        k: v for k, v in os.environ.items() if k in env}, **credentials("reader")})
    took = wait("serving", ready, 60)
    log(f"serving sidecar up on http://127.0.0.1:{SERVING_PORT}/healthz in {took:.1f}s "
        "(it scores once a champion exists)")


SERVICE = Service(start, ready, f"http://127.0.0.1:{SERVING_PORT}")
