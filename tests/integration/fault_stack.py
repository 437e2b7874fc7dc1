"""A stack of its own for the fault suite: Kafka, MLflow and the S3 endpoint started by the stack's own
commands in a folder of their own, on free ports, so a fault can stop and start one of them without
touching the services every other test shares.

    with FaultStack.started() as stack:
        stack.down("kafka"); back = stack.up("kafka")    # the time the service answers again
        env = stack.client_env()                          # what a client of this stack reads
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

from ml.settings.login import stack_folder

ROOT = Path(__file__).resolve().parents[2]
STACK = [sys.executable, str(ROOT / "docker" / "local" / "stack.py")]
SERVICES = ("kafka", "mlflow", "s3")
BUCKET = "continuum-lake"


def free_ports(count: int) -> list[int]:
    """`count` free loopback ports, each with the next one free too (Kafka's controller listens there),
    drawn below the range the OS hands out to outgoing connections, so none of those takes one first."""
    outgoing = Path("/proc/sys/net/ipv4/ip_local_port_range")  # Linux; elsewhere, the IANA range's start
    low = int(outgoing.read_text().split()[0]) if outgoing.exists() else 49152
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(max(1024, low - 12_000), low - 1)
        if {port, port + 1} & {p + d for p in ports for d in (0, 1)}:
            continue
        with socket.socket() as a, socket.socket() as b, contextlib.suppress(OSError):
            a.bind(("127.0.0.1", port))
            b.bind(("127.0.0.1", port + 1))
            ports.append(port)
    return ports


class FaultStack:
    """The services of one stack folder, each stopped and started by `docker/local/stack.py`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ports = dict(zip(SERVICES, free_ports(len(SERVICES))))
        self.env = {**os.environ, "CONTINUUM_LOCAL_DIR": str(folder),
                    **{f"CONTINUUM_LOCAL_{name.upper()}_PORT": str(port) for name, port in self.ports.items()}}
        jars = stack_folder() / "kafka"  # the running stack's Kafka jars, rather than fetching them again
        if "KAFKA_HOME" not in os.environ and (jars / "libs").is_dir():
            self.env["KAFKA_HOME"] = str(jars)

    @classmethod
    @contextlib.contextmanager
    def started(cls, logs: Path | None = None) -> Iterator["FaultStack"]:
        """A fresh folder under the checkout's stack folder with its three services up; all of it goes
        after, but for the services' logs, copied to `logs` when given."""
        stack = cls(stack_folder() / f"faults-{uuid.uuid4().hex[:8]}")
        stack.folder.mkdir(parents=True)
        try:
            with ThreadPoolExecutor(len(SERVICES)) as pool:  # independent services: started side by side
                list(pool.map(stack.up, SERVICES))
            yield stack
        finally:
            stack.down(*SERVICES)
            if logs is not None:
                shutil.copytree(stack.folder / "logs", logs, dirs_exist_ok=True)
            shutil.rmtree(stack.folder, ignore_errors=True)

    def _stack(self, *args: str, timeout: float = 300) -> None:
        proc = subprocess.run(STACK + list(args), env=self.env, capture_output=True, text=True, timeout=timeout,
                              cwd=ROOT)
        if proc.returncode != 0:
            raise RuntimeError(f"stack.py {' '.join(args)} failed in {self.folder}:\n{proc.stdout[-2000:]}"
                               f"\n{proc.stderr[-2000:]}")

    def up(self, *names: str) -> float:
        """Start services (they keep their data in the folder); returns the monotonic time they answer."""
        self._stack("up", *names)
        return time.monotonic()

    def down(self, *names: str) -> float:
        """Stop services (SIGTERM, as `make down` does); returns the monotonic time they are gone."""
        self._stack("down", *names)
        return time.monotonic()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports['kafka']}"

    @property
    def mlflow_uri(self) -> str:
        return f"http://127.0.0.1:{self.ports['mlflow']}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def login(self, account: str = "pipeline") -> dict[str, str]:
        """MLflow's login as one of this stack's accounts (its generated password)."""
        password = (self.folder / "secrets" / f"mlflow-{account}").read_text().strip()
        return {"MLFLOW_TRACKING_USERNAME": account, "MLFLOW_TRACKING_PASSWORD": password}

    def client_env(self, account: str = "pipeline") -> dict[str, str]:
        """The settings a client of this stack reads: broker, registry, its login, the S3 endpoint."""
        return {"CONTINUUM_KAFKA_BOOTSTRAP": self.bootstrap, "CONTINUUM_MLFLOW_TRACKING_URI": self.mlflow_uri,
                "CONTINUUM_S3_ENDPOINT_URL": self.s3_endpoint, **self.login(account)}
