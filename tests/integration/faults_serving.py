"""The serving faults, with traffic flowing through a real sidecar on the fault stack: the broker restarted
while it scores, and MLflow stopped in the middle of a promotion and of the sidecar's swap to it.

`ServingRig` sets the scene: a model with v1 champion and v2 approved (judged in the lake as promote_model
judges), the sidecar (`python -m ml.serving`, its alias poll long, so only a control message wakes it),
a live stream whose every acknowledged event id is known, and a reader counting the predictions of each.
"""

from __future__ import annotations

import contextlib
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable
from unittest.mock import patch

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from mlflow import MlflowClient

from ml.lake import Lake
from ml.registry import audit_log, by_alias, publish_control
from ml.registry.approval import APPROVAL, APPROVED, APPROVED_BY
from ml.serving.metrics import ServingMetrics
from ml.serving.model import ModelUnavailable
from ml.serving.stream import MAX_IN_FLIGHT
from ml.serving.swap import ModelKeeper
from tests.integration.fault_stack import FaultStack
from tests.integration.fault_stream import AckedFeeder, Fault, Watcher
from tests.integration.faults_registry import Killed, MoveLog, task_env
from tests.integration.serving_models import CONTRACT, new_model, register, train_booster
from tests.integration.serving_process import SidecarProcess, promote
from tests.integration.serving_topics import events

TOPICS = {"TELEMETRY": 3, "PREDICTIONS": 3, "ALERTS": 1, "DLQ": 1, "CONTROL": 1, "PREDICTIONS_SHADOW": 1}
WAIT_S = 180.0  # the longest a fault's recovery is waited for


class ServingRig:
    """The sidecar under test on the fault stack, its model and its traffic (`rate` events/s)."""

    def __init__(self, stack: FaultStack, workdir: Path, rate: float, seconds: float, batch_max: int) -> None:
        self.stack, self.batch_max = stack, batch_max
        self.client = MlflowClient(stack.mlflow_uri)
        self.name = new_model(self.client)
        self.lake = Lake(str(workdir / "serving-lake"))
        admin = AdminClient({"bootstrap.servers": stack.bootstrap})
        names = {k: f"faults.{k.lower()}.{self.name}" for k in TOPICS}
        for fut in admin.create_topics([NewTopic(names[k], n, 1) for k, n in TOPICS.items()]).values():
            fut.result(30)
        self.v1 = register(self.client, self.name, train_booster(seed=1), lake=self.lake)
        self.v2 = register(self.client, self.name, train_booster(seed=2, rounds=12), lake=self.lake)
        self.client.set_model_version_tag(self.name, self.v2, APPROVAL, APPROVED)
        self.client.set_model_version_tag(self.name, self.v2, APPROVED_BY, "on-call")
        self.env = {**stack.client_env("reader"), "CONTINUUM_MODEL_NAME": self.name,
                    "CONTINUUM_LAKE_URI": self.lake.uri, "CONTINUUM_SERVING_GROUP": f"faults-{self.name}",
                    "CONTINUUM_SERVING_POLL_S": "600", "CONTINUUM_SERVING_BATCH_MAX": str(batch_max),
                    "CONTINUUM_SERVING_TOKEN": "faults", **{f"CONTINUUM_TOPIC_{k}": v for k, v in names.items()}}
        promote(self.env, self.client, self.v1)
        self.sidecar = SidecarProcess(self.env, workdir / "sidecar.log").start()
        self.sidecar.wait_health(timeout_s=120)
        self.watcher = Watcher(stack.bootstrap, names["PREDICTIONS"])
        started = time.monotonic()
        self.feeder = AckedFeeder(stack.bootstrap, names["TELEMETRY"], events(int(rate * seconds), seed=11),
                                  rate).start()
        # no fault before the stream flows end to end: a broker just started can keep the sidecar's producer
        # waiting for its idempotence id ("coordinator load in progress"), and a restart then would fault
        # the start-up rather than a running stream
        if self.watcher.first_after(self.feeder.sent_at, started, WAIT_S) is None:
            raise AssertionError(f"no event was scored within {WAIT_S} s of the traffic's start:\n"
                                 f"{self.sidecar.output()}")
        self.faults: list[tuple[str, tuple[str, ...], float | None, dict]] = []

    def phase(self, name: str, settle_s: float = 2.0) -> None:
        """Events sent from now on belong to `name`; traffic flows `settle_s` before the fault starts."""
        self.feeder.phase = name
        time.sleep(settle_s)

    def finish(self) -> list[Fault]:
        """Stop the traffic, wait until every acknowledged event is scored (or the wait runs out), stop the
        sidecar, and count each serving fault's lost and repeated events by id."""
        try:
            self.feeder.stop()
            self.feeder.producer = None  # its client goes now, not after the stack is down
            missing = self.watcher.wait_for(self.feeder.ids(), WAIT_S)
            running = self.sidecar.proc.poll() is None  # it never stopped on its own
        finally:
            self.sidecar.close()
            self.watcher.stop()
        bound = (MAX_IN_FLIGHT + 1) * self.batch_max  # the batches in flight, and one fetched
        out = []
        for name, phases, recovery, detail in self.faults:
            ids = self.feeder.ids(*phases)
            lost, dups = ids & missing, self.watcher.duplicates(ids)
            detail.update({"acked": len(ids), "missing": sorted(lost)[:20], "duplicate_bound": bound,
                           "failed_deliveries": len(self.feeder.failed), "sidecar_running": running,
                           "changed_scores": len(self.watcher.changed)})
            out.append(Fault(name, len(lost), dups, 0, recovery, not lost and dups <= bound and running
                             and recovery is not None and not self.feeder.failed and detail.get("ok", True), detail))
        return out


def kafka_restart(rig: ServingRig) -> None:
    """The broker stops (SIGTERM) and starts again while the sidecar scores; recovery: from the broker
    answering again until an event sent after that is scored."""
    rig.phase("kafka_broker_restart")
    stopping = time.monotonic()
    stopped = rig.stack.down("kafka")
    back = rig.stack.up("kafka")
    rig.feeder.phase = "after_kafka"
    scored = rig.watcher.first_after(rig.feeder.sent_at, back, WAIT_S)
    rig.faults.append(("kafka_broker_restart", ("kafka_broker_restart", "after_kafka"),
                       None if scored is None else scored - back,
                       {"stop_s": round(stopped - stopping, 2), "start_s": round(back - stopped, 2)}))


def first_answer(url: str, timeout_s: float) -> float | None:
    """The time `url` first answers 200 (polled every 0.1 s), None if it does not in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return time.monotonic()
        time.sleep(0.1)
    return None


class StopAfterAliasRead:
    """A real MLflow client whose next alias read, once armed, is followed by `stop()`: the registry goes
    away between the keeper reading where `champion` points and loading that version."""

    def __init__(self, client: MlflowClient) -> None:
        self.client, self.stop = client, None

    def __getattr__(self, name: str):
        return getattr(self.client, name)

    def get_model_version_by_alias(self, name: str, alias: str):
        found = self.client.get_model_version_by_alias(name, alias)
        stop, self.stop = self.stop, None
        if stop is not None:
            stop()
        return found


def mlflow_down_during_swap(rig: ServingRig, while_down: Callable[[], None] = lambda: None,
                            outage_s: float = 2.0) -> Fault:
    """promote_model's task moves `champion` to v2 and dies before its audit record (a model keeper keeps
    v1: the move is not recorded); Airflow retries it and it finishes the move. Then MLflow stops: a model
    keeper has read where `champion` points and cannot load v2, and the sidecar is woken (the announce
    task's control message) while MLflow is down (and `while_down` is called). MLflow comes back; the
    sidecar's look, retried by MLflow's client, swaps. Returns the promotion's record; the swap's own is
    kept in the rig (its events are counted when the traffic ends)."""
    from plugins.tasks import promotion

    rig.phase("mlflow_down_during_swap")
    pages: list[dict] = []
    keeper = ModelKeeper(StopAfterAliasRead(rig.client), rig.stack.mlflow_uri, rig.name, CONTRACT, ServingMetrics(),
                         pages.append, rig.lake, poll_s=600)
    keeper.refresh()
    moves = MoveLog(kill_after="champion")
    env = {**rig.stack.client_env(), "CONTINUUM_MODEL_NAME": rig.name, "CONTINUUM_LAKE_URI": rig.lake.uri}
    with task_env(env), patch.object(promotion, "_log_move", moves.callback):
        try:
            promotion.promote(rig.v2)
        except Killed:
            killed = time.monotonic()
        keeper.refresh()
        unrecorded = keeper.state.champion.version  # v1: a move the audit trail does not record is not served
        record = promotion.promote(rig.v2)  # Airflow's retry of the task
        retried = time.monotonic()
    stopping, stopped = time.monotonic(), []
    keeper.client.stop = lambda: stopped.append(rig.stack.down("mlflow"))
    with task_env({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}):  # as when the client's retries ran out
        try:
            keeper.refresh()
            during = "refused" if rig.v2 in keeper.refused else "swapped"
        except ModelUnavailable:
            during = "unavailable"
    publish_control(Producer({"bootstrap.servers": rig.stack.bootstrap}), rig.env["CONTINUUM_TOPIC_CONTROL"],
                    record)  # what the announce task sends: it wakes the sidecar while MLflow is down
    while_down()
    time.sleep(outage_s)  # the outage lasts: the sidecar asks the registry during it
    starting = time.monotonic()
    with ThreadPoolExecutor(1) as probe:
        answering = probe.submit(first_answer, f"{rig.stack.mlflow_uri}/health", WAIT_S)
        ready = rig.stack.up("mlflow")  # answering, and its accounts made again
        back = answering.result() or ready
    keeper.refresh()
    swapped = rig.watcher.wait_version(rig.v2, WAIT_S)
    early = swapped is not None and swapped < back  # the new version served while MLflow was down: impossible
    after = keeper.state.champion.version
    recovery = None if swapped is None else swapped - back
    rig.faults.append(("mlflow_down_during_swap", ("mlflow_down_during_swap",), recovery,
                       {"keeper_during_outage": during, "pages": len(pages), "keeper_after": after,
                        "stop_s": round(stopped[0] - stopping, 2) if stopped else None,
                        "start_s": round(back - starting, 2), "ready_s": round(ready - starting, 2),
                        "new_version_before_back": early,
                        "ok": during == "unavailable" and not pages and after == rig.v2 and not early}))
    audits = [r for r in audit_log(rig.lake) if r.get("model") == rig.name and r.get("to") == rig.v2]
    champion, previous = (by_alias(rig.client, rig.name, a) for a in ("champion", "previous"))
    twice = sum(max(0, n - 1) for n in moves.count.values()) + max(0, len(audits) - 1)
    whole = champion.version == rig.v2 and previous.version == rig.v1 and len(audits) == 1
    return Fault("promote_model_retried", 0 if whole else 1, twice, 0, retried - killed if moves.killed else None,
                 whole and not twice and unrecorded == rig.v1,
                 {"alias_moves": dict(moves.count), "audit_records": len(audits), "killed": moves.killed,
                  "served_before_retry": unrecorded, "champion": champion.version, "previous": previous.version})
