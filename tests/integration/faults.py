"""The fault suite: each fault in turn on a stack of its own (`FaultStack`), with live traffic flowing
through a real sidecar the whole time, and what each cost (`Fault`). The tests run it once at the size
of `QUICK`; bench/faults.py runs the same code at `FULL` and writes bench/results/faults.json.

    records = run_faults(QUICK, workdir)

The faults: the broker restarted while the sidecar scores (and, beside it, retrain_model's register task
killed after MLflow made the version, and retried); promote_model's task killed after moving `champion`
and retried, then MLflow stopped while a model keeper swaps to the new champion and the sidecar is woken
(and, while MLflow is down, the S3 endpoint stopped during an offload's publish, and an offload killed
between two of its files, each retried).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from unittest.mock import patch

import mlflow

from tests.integration.fault_stack import FaultStack
from tests.integration.fault_stream import Fault
from tests.integration.faults_lake import offload_killed_mid_write, offload_topic, s3_down_during_offload
from tests.integration.faults_registry import register_retried
from tests.integration.faults_serving import ServingRig, kafka_restart, mlflow_down_during_swap


@dataclass(frozen=True)
class Plan:
    """How big a run is: the stream's rate (events/s) and the most seconds it lasts, the events of each
    offloaded hour, and the sidecar's micro-batch bound (the bound on repeats follows from it)."""

    rate: float
    seconds: float
    hour_events: int
    batch_max: int


QUICK = Plan(rate=200, seconds=300, hour_events=2_000, batch_max=200)
FULL = Plan(rate=1_000, seconds=600, hour_events=200_000, batch_max=1_000)


@contextlib.contextmanager
def logged_in(stack: FaultStack):
    """This process's MLflow client on the fault stack as its pipeline account; put back afterwards."""
    before = mlflow.get_tracking_uri()
    with patch.dict(os.environ, stack.login()):
        mlflow.set_tracking_uri(stack.mlflow_uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(before)


def run_faults(plan: Plan, workdir: Path) -> list[Fault]:
    """Every fault once on a fresh stack that is gone afterwards; one record per fault. A fault that does
    not need the service another one stops runs beside it (the registration's retry while the broker
    restarts, the lake's faults while MLflow is down), so the whole suite takes less time."""
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    def step(what: str) -> None:
        print(f"[faults] {time.monotonic() - started:6.1f}s {what}", file=sys.stderr, flush=True)

    def lake_faults() -> list[Fault]:
        topic = offload_topic(stack)
        return [s3_down_during_offload(stack, topic, plan.hour_events, workdir),
                offload_killed_mid_write(stack, topic, plan.hour_events, workdir)]

    with FaultStack.started(workdir / "stack-logs") as stack, logged_in(stack), \
            ThreadPoolExecutor(1, "fault") as beside:
        step("stack up")
        rig = ServingRig(stack, workdir, plan.rate, plan.seconds, plan.batch_max)
        step("sidecar serving, traffic flowing")
        others: list[Fault] = []
        lake: list[Future] = []
        try:
            registration = beside.submit(register_retried, stack)
            kafka_restart(rig)
            others.append(registration.result())
            step("broker restarted; registration retried")
            others.append(mlflow_down_during_swap(rig, while_down=lambda: lake.append(beside.submit(lake_faults))))
            step("MLflow restarted, promotion retried")
            others += lake[0].result()
            step("S3 endpoint restarted, offloads retried")
        finally:
            serving = rig.finish()
            step("traffic drained")
    for record in serving + others:
        step(f"{record.name}: {record.to_dict()}")
    return serving + others


def summary(records: list[Fault]) -> dict:
    """The figures as bench/results/faults.json holds them."""
    return {"faults": [r.to_dict() for r in records], "faults_survived": sum(r.survived for r in records),
            "faults_total": len(records)}
