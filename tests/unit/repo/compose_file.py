"""docker-compose.yaml read as a file for the compose tests (no Docker engine runs them): where it is,
the services it must hold, and the readers of a service's environment, ports and command flags."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
ONE_SHOT = {"kafka-init", "minio-init", "mlflow-init", "airflow-init"}
AIRFLOW = ["airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
           "airflow-worker"]
REQUIRED = {"kafka", "minio", "postgres", "redis", "mlflow", *AIRFLOW, "serving", "prometheus", "grafana", *ONE_SHOT}
# Local defaults the embedded stack has no constant for (documented in the architecture).
MINIO_CONSOLE_PORT, POSTGRES_PORT, PROMETHEUS_PORT, GRAFANA_PORT = 9001, 5432, 9090, 3000
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|KEY")


def env(service: dict) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {k: str(v) for k, v in raw.items()}


def ports(service: dict) -> list[tuple[int | None, int]]:
    """(host port or None, container port) for every `ports` entry, short or long syntax."""
    out = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            out.append((int(entry["published"]) if "published" in entry else None, int(entry["target"])))
            continue
        parts = str(entry).split("/")[0].split(":")
        out.append((int(parts[-2]) if len(parts) > 1 else None, int(parts[-1])))
    return out


def flag(service: dict, name: str) -> str:
    command = service["command"]
    command = shlex.split(command) if isinstance(command, str) else command
    return str(command[command.index(name) + 1])


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """KAFKA_(ADVERTISED_)LISTENERS -> {name: (host, port)}."""
    out = {}
    for item in value.split(","):
        name, address = item.split("://")
        host, _, port = address.rpartition(":")
        out[name] = (host, int(port))
    return out
