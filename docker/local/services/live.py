"""A live telemetry stream for the local stack: the simulator in real time, so the hourly DAGs, the
sidecar and the loop report keep moving after the demo. Optional: it runs only when named
(`make live`, and the end of `make demo`), and `make down` stops it.

    CONTINUUM_LIVE_RATE       events per second (default 5: a gentle stream, about 18,000 an hour)
    CONTINUUM_LIVE_DEVICES    machines in the fleet (default 100)
    CONTINUUM_LIVE_SCENARIO   scenarios as `continuum-simulate` reads them, comma-separated at the top
                              level by ';' (default none: no drift unless asked), e.g. covariate@+10m
The stream's events carry the time they are sent, so it must start after any replayed history (the
offload expects each topic in time order within the lateness): the demo starts it once it has played.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from processes import ROOT, Service, StackError, log, pid, spawn, wait
from services.kafka import KAFKA_PORT

DEFAULT_RATE, DEFAULT_DEVICES = "5", "100"


def command(env: dict[str, str] | None = None) -> list[str]:
    """The simulator's command line for the settings in `env` (the process environment by default)."""
    env = os.environ if env is None else env
    rate, devices = env.get("CONTINUUM_LIVE_RATE") or DEFAULT_RATE, env.get("CONTINUUM_LIVE_DEVICES") or DEFAULT_DEVICES
    for name, value in (("CONTINUUM_LIVE_RATE", rate), ("CONTINUUM_LIVE_DEVICES", devices)):
        try:
            if float(value) <= 0:
                raise ValueError
        except ValueError:
            raise StackError(f"{name}={value!r}: give a number above 0 (e.g. {name}=5)") from None
    cmd = [str(Path(sys.executable).with_name("continuum-simulate")), "live", "--rate", rate, "--devices", devices,
           "--seed", str(int(time.time()))]
    for spec in filter(None, (s.strip() for s in (env.get("CONTINUUM_LIVE_SCENARIO") or "").split(";"))):
        cmd += ["--scenario", spec]
    return cmd


def ready() -> bool:
    """The simulator runs (it has no port: its events go to Kafka)."""
    return pid("live") is not None


def start() -> None:
    cmd = command()
    spawn("live", cmd, {"CONTINUUM_KAFKA_BOOTSTRAP": os.environ.get("CONTINUUM_KAFKA_BOOTSTRAP",
                                                                    f"127.0.0.1:{KAFKA_PORT}"),
                        "PYTHONPATH": str(ROOT)})
    time.sleep(2)  # the simulator checks the broker first; a bad scenario or broker ends it at once
    wait("live", ready, 10)
    log(f"live stream running: {' '.join(cmd[1:])} (make live RATE=... SCENARIO=... changes it; make down stops it)")


SERVICE = Service(start, ready, f"kafka telemetry (live, {os.environ.get('CONTINUUM_LIVE_RATE') or DEFAULT_RATE}/s)",
                  optional=True)
