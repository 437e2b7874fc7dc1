"""The whole loop on a running stack, with time compressed: every component runs for real.

The simulator replays hours with their own event times (all in the past), and the DAGs cover those
hours as backfills, so a day of the loop plays out in minutes:

1. history: `history_hours` of normal telemetry and outcomes into Kafka;
2. offload: a `lake_offload` backfill over them (Kafka to Parquet, Great Expectations), through the
   Airflow REST API;
3. first champion: `retrain_model` triggered by hand, `promote_model` follows on the challenger Asset,
   the sidecar loads the champion and scores the backlog;
4. drift: `drift_hours` with a covariate shift and a concept drift switched on at their start, produced
   hour by hour while the sidecar scores them; a backfill offloads them; `monitor_model` runs on each
   validated hour, decides to retrain, `retrain_model` and `promote_model` follow on their Assets and
   the sidecar swaps to the new champion on the control message;
5. recovery: `after_hours` more drifted hours, scored by the new champion, offloaded and monitored;
6. the summary (`tooling.loop.summary`) and the loop report.

A step that fails stops the loop with the step's name and where to look.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from mlflow import MlflowClient

from ml.contract import load_contract
from ml.lake import Lake
from ml.lake.layout import decisions_prefix, roots
from ml.lake.window import HOUR
from ml.registry import CHALLENGER, by_alias, champion, version_url
from ml.registry.approval import APPROVAL, GATE_TAG_PREFIX, REJECTED
from ml.runtime import offload_tuning
from ml.simulate import ConceptDrift, CovariateDrift, SimConfig, Simulator
from ml.simulate.produce import KafkaSink
from ml.train import RetrainRequest
from ml.train.retrain import regime_request
from plugins.dag_ids import (LAKE_OFFLOAD, MONITOR_MODEL, PLAN_RETRAIN, PROMOTE_MODEL, REGIME_POKE_S, RETRAIN_MODEL,
                             ROLLBACK_MODEL, WAIT_FOR_DATA)
from tooling.loop.airflow_api import AirflowApi, AirflowError

log = logging.getLogger(__name__)
RETENTION = timedelta(days=6)  # inside the topics' 7 days, by record timestamp
DAGS = [LAKE_OFFLOAD, MONITOR_MODEL, RETRAIN_MODEL, PROMOTE_MODEL, ROLLBACK_MODEL]
CHAIN = [MONITOR_MODEL, RETRAIN_MODEL, PROMOTE_MODEL]
REGIME_SENSOR = WAIT_FOR_DATA  # retrain_model's sensor for a new regime's labelled hours
REGIME_PLAN = PLAN_RETRAIN  # the task whose return value is the request that sensor waits on
# how long that sensor may keep waiting once every label is in the lake before the loop stops counting
# it, when its request cannot be read: more than two of its pokes, each of which has seen all the data
# the replay will ever hold
SENSOR_GIVE_UP_S = 2.5 * REGIME_POKE_S
LOOP_TOPICS = ("telemetry", "outcomes", "predictions", "alerts", "dlq", "control", "predictions_shadow")


class LoopError(RuntimeError):
    """A step of the loop failed; the message names the step and where to look."""


@dataclass(frozen=True)
class Profile:
    """How much of the loop to play: hours of each phase and the fleet that produces them."""

    name: str
    history_hours: int
    drift_hours: int
    after_hours: int
    devices: int = 40
    rate: float = 0.5  # events per second of event time, the whole fleet
    seed: int = 7
    search_seconds: float = 8.0
    timeout_s: float = 600.0  # per waiting step

    @property
    def total_hours(self) -> int:
        return self.history_hours + self.drift_hours + self.after_hours


PROFILES = {
    "demo": Profile("demo", history_hours=24, drift_hours=20, after_hours=3),
    "short": Profile("short", history_hours=6, drift_hours=14, after_hours=2, devices=30, rate=0.5, timeout_s=420.0),
}


@dataclass
class Timeline:
    """The event-time hours of each phase, ending an hour before the current one (closed and late-safe)."""

    start: datetime
    onset: datetime
    swap_from: datetime
    end: datetime

    @classmethod
    def free_block(cls, profile: Profile, now: datetime, used: set[datetime]) -> "Timeline":
        """The latest run of hours, ending at least an hour before `now` (closed, lateness passed), that
        no earlier lake_offload run covered. Replaying hours Airflow already has runs for would need a
        backfill that replaces them, and on the standalone's SQLite that races the scheduler (it
        stopped it twice: `StaleDataError`, `ObjectDeletedError`)."""
        end = now.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0) - HOUR
        oldest = now - RETENTION + profile.total_hours * HOUR
        while end >= oldest:
            hours = [end - (i + 1) * HOUR for i in range(profile.total_hours)]
            clash = [h for h in hours if h in used]
            if not clash:
                return cls.ending_at(profile, end)
            end = min(clash)  # the block must end at or before the earliest clashing hour
        raise LoopError(f"no {profile.total_hours} hours in a row within Kafka's retention are free of earlier "
                        f"lake_offload runs; stop the stack and remove .local (`make down && rm -rf .local`)")

    @classmethod
    def ending_at(cls, profile: Profile, end: datetime) -> "Timeline":
        start = end - profile.total_hours * HOUR
        onset = start + profile.history_hours * HOUR
        return cls(start, onset, onset + profile.drift_hours * HOUR, end)

    def hours(self, a: datetime, b: datetime) -> list[datetime]:
        return [a + i * HOUR for i in range(int((b - a) / HOUR))]

    def to_dict(self) -> dict:
        return {k: v.isoformat() for k, v in asdict(self).items()}


@dataclass
class Loop:
    settings: object
    api: AirflowApi
    profile: Profile
    serving_url: str
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    steps: list[dict] = field(default_factory=list)
    _regime_verdicts: dict[str, bool] = field(default_factory=dict, repr=False)  # run id -> unmet

    def __post_init__(self) -> None:
        self.contract = load_contract(self.settings.contract)
        self.lake = Lake.from_settings(self.settings.lake)
        self.client = MlflowClient(self.settings.mlflow_tracking_uri)
        self.timeline = Timeline.free_block(self.profile, self.now, self.api.covered_hours(LAKE_OFFLOAD,
                                                                                          self.now - RETENTION))
        t = self.timeline
        onset_ms = int(t.onset.timestamp() * 1000)
        scenarios = (CovariateDrift(start_ms=onset_ms), ConceptDrift(start_ms=onset_ms))
        self.sim = Simulator(self.contract, SimConfig(devices=self.profile.devices, rate=self.profile.rate,
                                                       seed=self.profile.seed, scenarios=scenarios))
        self.sink = KafkaSink(self.settings.kafka_bootstrap, self.settings.kafka.topics)

    # --- steps ---------------------------------------------------------------------------------
    def step(self, name: str, fn, *args):
        started = time.monotonic()
        print(f"[loop] {name} ...", flush=True)
        try:
            result = fn(*args)
        except (AirflowError, LoopError, requests.RequestException) as exc:
            raise LoopError(f"step '{name}' failed: {exc}") from None
        took = time.monotonic() - started
        self.steps.append({"step": name, "seconds": round(took, 1)})
        print(f"[loop] {name}: done in {took:.0f} s", flush=True)
        return result

    def run(self) -> dict:
        t, p = self.timeline, self.profile
        self.step("wait for the DAGs to be parsed", self.api.wait_parsed, DAGS)
        self.step("cancel unfinished offload backfills", self.api.cancel_backfills, LAKE_OFFLOAD)
        self.step("wait for earlier offload runs of these hours", self.offload_idle)
        self.step(f"replay {p.history_hours} h of history", self.produce, t.hours(t.start, t.onset), False)
        self.step("offload the history (lake_offload backfill)", self.offload, t.start, t.onset)
        first = self.step("train and promote the first champion", self.first_champion)
        self.step(f"sidecar serves v{first} and scores the backlog", self.wait_serving, first)
        self.step(f"stream {p.drift_hours} h with covariate and concept drift from {t.onset:%H:%M}Z",
                  self.produce, t.hours(t.onset, t.swap_from), True)
        since = datetime.now(timezone.utc)
        self.step("offload the drifted hours (lake_offload backfill)", self.offload, t.onset, t.swap_from)
        second = self.step("monitor detects, retrain and promote a new champion", self.wait_champion, first, since)
        self.step(f"sidecar swaps to v{second}", self.wait_serving, second)
        self.step(f"stream {p.after_hours} h scored by v{second}", self.produce, t.hours(t.swap_from, t.end), True)
        self.step("offload and monitor the recovery", self.offload, t.swap_from, t.end)
        self.step("offload the labels that arrived after the last hour", self.late_labels)
        self.step("wait for monitoring to settle", self.settle)
        return {"first": first, "second": second, "since": since.isoformat()}

    def produce(self, hours: list[datetime], wait_scored: bool) -> None:
        """Replay each hour (telemetry, then the outcomes due by its end) into Kafka; with `wait_scored`,
        wait for the sidecar to score each hour before the next, as a live stream would be scored. After
        the timeline's last hour, the outcomes still due arrive (in time order) too."""
        now_ms = int(datetime.now(timezone.utc).timestamp() * 1000)
        for hour in hours:
            last = hour + HOUR == self.timeline.end
            a, b = int(hour.timestamp() * 1000), int((hour + HOUR).timestamp() * 1000)
            for batch in self.sim.replay(a, b, until_ms=now_ms if last else b):
                self.sink.send(batch)
            report = self.sink.close()
            if not report.ok:
                raise LoopError(f"producing {hour:%Y-%m-%dT%H}: {report.failed} failed, {report.undelivered} "
                                f"undelivered ({'; '.join(report.errors[:3])})")
            if wait_scored:
                self.wait_scored()

    def offload(self, start: datetime, end: datetime) -> None:
        """A lake_offload backfill over [start, end), waited for; every hour must end valid."""
        self.api.backfill(LAKE_OFFLOAD, start, end - HOUR)
        wanted = {h.isoformat() for h in self.timeline.hours(start, end)}

        def select(runs):
            return [r for r in runs if r.get("data_interval_start") and
                    _iso(r["data_interval_start"]) in wanted and r["run_type"] == "backfill"]

        self.api.wait_runs(LAKE_OFFLOAD, lambda runs: _complete(select(runs), wanted), self.profile.timeout_s,
                           "offload", logical_date_gte=start.isoformat(), logical_date_lte=(end - HOUR).isoformat())

    def late_labels(self) -> int:
        """The outcomes observed after the timeline, hour by hour up to the contract's longest delay
        (the telemetry of those hours is not the loop's, so this is the offload library, not the DAG)."""
        from ml.lake.window import Window
        from ml.offload import offload_hour, window_consumer

        delay = timedelta(minutes=self.contract.label.max_delay_minutes)
        rows = 0
        consumer = window_consumer({"bootstrap.servers": self.settings.kafka_bootstrap})
        try:
            for hour in self.timeline.hours(self.timeline.end, self.timeline.end + delay):
                rows += offload_hour(consumer, self.lake, self.contract, "outcomes", self.settings.topic_outcomes,
                                     Window.hour(hour), self.settings.offload.lateness, tuning=offload_tuning)["rows"]
        finally:
            consumer.close()
        return rows

    def offload_idle(self) -> None:
        """Until no run of lake_offload for the timeline's hours is queued or running: a backfill that
        replaces runs must not race the scheduler over them (an interrupted loop leaves some behind)."""
        t, deadline = self.timeline, time.monotonic() + self.profile.timeout_s
        span = {"logical_date_gte": t.start.isoformat(), "logical_date_lte": (t.end - HOUR).isoformat()}
        while any(self.api.runs(LAKE_OFFLOAD, state=state, **span) for state in ("queued", "running")):
            if time.monotonic() > deadline:
                raise LoopError("earlier lake_offload runs of these hours are still running; see the Airflow UI")
            time.sleep(3)

    def first_champion(self) -> str:
        since = datetime.now(timezone.utc)
        days = (since - self.timeline.start) / timedelta(days=1)  # the window ends now: reach back to the history
        run_id = self.api.trigger(RETRAIN_MODEL, {"reason": "first model", "window_days": round(days + 0.01, 3),
                                                    "search_seconds": self.profile.search_seconds})
        self.api.wait_runs(RETRAIN_MODEL, lambda runs: [r for r in runs if r["dag_run_id"] == run_id],
                           self.profile.timeout_s, "first training")
        return self.wait_champion(None, since)

    def wait_champion(self, old: str | None, since: datetime) -> str:
        """Until the champion alias points at a version other than `old`; a failed run of the chain or
        a refused challenger stops the wait with its evidence."""
        deadline = time.monotonic() + self.profile.timeout_s
        name = self.settings.model_name
        while True:
            current = champion(self.client, name)
            if current is not None and current.version != old:
                return current.version
            failed = self.api.failed_since(CHAIN, since)
            if failed:
                raise LoopError(f"a run failed: {failed[0]}")
            challenger = by_alias(self.client, name, CHALLENGER)
            if challenger is not None and challenger.tags.get(APPROVAL) == REJECTED:
                gates = "; ".join(f"{k}={v}" for k, v in challenger.tags.items() if k.startswith(GATE_TAG_PREFIX))
                raise LoopError(f"{name} v{challenger.version} was refused ({gates}); see "
                                f"{version_url(self.settings.mlflow_tracking_uri, name, challenger.version)}")
            if time.monotonic() > deadline:
                decisions = sorted(self.lake.list(decisions_prefix()))[-3:]
                raise LoopError(f"no new champion within {self.profile.timeout_s:.0f} s (champion "
                                f"{current.version if current else 'none'}; latest decisions {decisions})")
            time.sleep(5)

    def wait_serving(self, version: str) -> None:
        deadline = time.monotonic() + self.profile.timeout_s
        while True:
            try:
                body = requests.get(f"{self.serving_url}/healthz", timeout=5).json()
            except (requests.RequestException, ValueError):
                body = {}
            if body.get("ready") and body.get("champion") == version:
                self.wait_scored()
                return
            if time.monotonic() > deadline:
                raise LoopError(f"the sidecar at {self.serving_url} does not serve v{version}: {body}; "
                                f"see .local/logs/serving.log")
            time.sleep(2)

    def wait_scored(self) -> None:
        """Until the sidecar's consumer group has committed every telemetry offset."""
        topic = self.settings.topic_telemetry
        consumer = Consumer({"bootstrap.servers": self.settings.kafka_bootstrap,
                             "group.id": self.settings.serving_group, "enable.auto.commit": False})
        try:
            partitions = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
            deadline = time.monotonic() + self.profile.timeout_s
            while True:
                committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
                lag = sum(max(0, consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)[1]
                              - max(tp.offset, 0)) for tp in committed)
                if lag == 0:
                    return
                if time.monotonic() > deadline:
                    raise LoopError(f"the sidecar still has {lag} events to score; see .local/logs/serving.log")
                time.sleep(0.5)
        finally:
            consumer.close()

    def settle(self) -> None:
        """Until the monitoring chain is idle. A retrain that keeps waiting for a new regime's labelled
        hours after the replay's last labels are in the lake counts as settled: those hours can only come
        from a live stream, and the sensor waits for them (or its timeout) as it would in production."""
        deadline = time.monotonic() + self.profile.timeout_s
        waiting_since: dict[str, float] = {}
        time.sleep(5)
        while True:
            now, busy, waiting = time.monotonic(), [], []
            for dag_id, run_id in self.api.active(CHAIN):
                if not self._sensing(dag_id, run_id):
                    waiting_since.pop(run_id, None)
                    busy.append(f"{dag_id} {run_id}")
                elif self._regime_unmet(run_id) or now - waiting_since.setdefault(run_id, now) >= SENSOR_GIVE_UP_S:
                    waiting.append(run_id)
                else:
                    busy.append(f"{dag_id} {run_id}")
            if not busy:
                for run_id in waiting:
                    print(f"[loop] {RETRAIN_MODEL} {run_id} waits for labelled hours of a new regime that the replay "
                          f"does not hold: {self.api.run_url(RETRAIN_MODEL, run_id)}", flush=True)
                return
            if time.monotonic() > deadline:
                raise LoopError(f"still running after {self.profile.timeout_s:.0f} s: {', '.join(busy)}")
            time.sleep(3)

    def _regime_unmet(self, run_id: str) -> bool:
        """The sensor's own check on the lake as it is now, which holds every hour the replay will offload:
        a request it does not pass waits for hours of a live stream. False when the request is unknown
        (the caller then counts the sensor's pokes instead). Checked once per run: the replay is over, so
        the lake's answer for a request does not change while the loop settles."""
        if run_id not in self._regime_verdicts:
            request = self.api.xcom(RETRAIN_MODEL, run_id, REGIME_PLAN)
            unmet = False
            if isinstance(request, dict):
                ready, status = regime_request(self.lake, self.contract, RetrainRequest.from_dict(request),
                                               self.settings.retrain_regime_hours, datetime.now(timezone.utc))
                unmet = ready is None
                if unmet:
                    print(f"[loop] {RETRAIN_MODEL} {run_id}: {status}", flush=True)
            self._regime_verdicts[run_id] = unmet
        return self._regime_verdicts[run_id]

    def _sensing(self, dag_id: str, run_id: str) -> bool:
        """A retrain run whose regime sensor is between pokes, waiting for labelled hours."""
        return dag_id == RETRAIN_MODEL and self.api.task_state(dag_id, run_id, REGIME_SENSOR) == "up_for_reschedule"


def _iso(value: str) -> str:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc).isoformat()


def _complete(chosen: list[dict], wanted: set[str]) -> list[dict]:
    """The latest run of each wanted hour, or nothing until every hour has one."""
    latest = {}
    for run in sorted(chosen, key=lambda r: r.get("run_after") or ""):
        latest[_iso(run["data_interval_start"])] = run
    return list(latest.values()) if set(latest) == wanted else []


def wipe_local_stack(settings) -> None:
    """Destructive: give the loop a clean stack by deleting every record of the topics, the whole lake,
    the registered model, the sidecar group's consumer offsets and the alert state. Only for the
    embedded local stack, only through `continuum-loop reset`."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    existing = admin.list_topics(timeout=10).topics
    names = [settings.kafka.topics[k] for k in LOOP_TOPICS]
    doomed = [n for n in names if n in existing]
    partitions = {n: len(existing[n].partitions) for n in doomed}
    for future in admin.delete_topics(doomed, operation_timeout=30).values():
        future.result()
    try:
        admin.delete_consumer_groups([settings.serving_group])[settings.serving_group].result()
    except Exception:  # the group does not exist yet
        pass
    deadline = time.monotonic() + 60
    while True:
        futures = admin.create_topics([NewTopic(n, partitions.get(n, 1), 1) for n in names], operation_timeout=30)
        pending = []
        for name, future in futures.items():
            try:
                future.result()
            except Exception as exc:  # deletion still in progress
                if "already exists" not in str(exc) and "marked for deletion" not in str(exc).lower():
                    raise
                if "marked for deletion" in str(exc).lower():
                    pending.append(name)
        if not pending:
            break
        if time.monotonic() > deadline:
            raise LoopError(f"topics {pending} are still being deleted")
        time.sleep(1)
    lake = Lake.from_settings(settings.lake)
    for prefix in roots():
        lake.delete_prefix(prefix)
    client = MlflowClient(settings.mlflow_tracking_uri)
    try:
        client.delete_registered_model(settings.model_name)
    except Exception:  # not registered yet
        pass
    state = Path(settings.alert_state_path)
    if state.exists():
        state.unlink()


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    shutil.move(tmp, path)
