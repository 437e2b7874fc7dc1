"""`mlflow server` with a SQLite store and proxied artifacts in the stack's folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from processes import LOCAL, Service, http_ok, log, spawn, wait

MLFLOW_PORT = int(os.environ.get("CONTINUUM_LOCAL_MLFLOW_PORT", "5000"))


def ready() -> bool:
    return http_ok(f"http://127.0.0.1:{MLFLOW_PORT}/health")


def start() -> None:
    home = LOCAL / "mlflow"
    home.mkdir(parents=True, exist_ok=True)
    spawn("mlflow", [
        str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(MLFLOW_PORT),
        "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
        "--artifacts-destination", str(home / "artifacts"), "--workers", "2",
    ])
    took = wait("mlflow", ready, 120)
    log(f"mlflow ready on http://127.0.0.1:{MLFLOW_PORT} in {took:.1f}s")


SERVICE = Service(start, ready, f"http://127.0.0.1:{MLFLOW_PORT}")
