"""The whole loop on a running stack, played faster than real time in real time's order.

The simulator replays hours with their own event times (all in the past), the DAGs cover those hours
as backfills, and the loop's clock (`ml.clock`) stands every process at the event time the replay has
reached, so a day of the loop plays out in minutes and every event is scored by the model that a system
running in real time would have had as champion at that event's time:

1. history: `history_hours` of normal telemetry and outcomes into Kafka, offloaded by a `lake_offload`
   backfill (Kafka to Parquet, Great Expectations) through the Airflow REST API;
2. first champion: at the history's end plus the offload's lateness (when a real-time offload of its last
   hour would have run), `retrain_model` triggered by hand, `promote_model` follows on the challenger
   Asset, the sidecar loads it; it serves events from that time on (the sidecar's group starts there:
   the history was never served);
3. paced hours, from the drift's onset (a covariate shift and a concept drift switched on together):
   for the hour ending at E, the events up to E plus the lateness go into Kafka and are scored; the
   clock moves to E plus the lateness; a `lake_offload` backfill offloads and validates the hour;
   `monitor_model` judges its window; any retrain and promotion it asks for run, and the sidecar swaps,
   before the next hour's events go in. A retrain that waits for labelled hours of the new regime does
   not hold the replay up while the lake lacks them (in real time it would be waiting too);
4. the outcomes observed after the last hour, the chain settling, the clock back to the wall clock;
5. the summary (`tooling.loop.summary`, which checks that no prediction came from a model that was not
   champion at its event's time) and the loop report.

The one simplification: the DAGs' work for an hour is taken as done at the moment its offload would
start; in real time training and promotion take minutes more, during which the old champion serves.

A step that fails stops the loop with the step's name and where to look.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests
from confluent_kafka import Consumer, TopicPartition
from mlflow import MlflowClient

from ml import clock
from ml.contract import load_contract
from ml.lake import Lake
from ml.lake.layout import decision_key, decisions_prefix
from ml.lake.window import HOUR
from ml.monitor.run import run_id_for
from ml.registry import CHALLENGER, by_alias, champion, version_url
from ml.registry.approval import APPROVAL, GATE_TAG_PREFIX, REJECTED
from ml.runtime import offload_tuning
from ml.simulate.produce import KafkaSink
from plugins.dag_ids import LAKE_OFFLOAD, MONITOR_MODEL, PROMOTE_MODEL, RETRAIN_MODEL, ROLLBACK_MODEL
from tooling.loop.airflow_api import AirflowApi, AirflowError
from tooling.loop.chain import CHAIN, ChainWatch
from tooling.loop.stream import Play, simulator_play
from tooling.loop.timeline import RETENTION, LoopError, Profile

log = logging.getLogger(__name__)
DAGS = [LAKE_OFFLOAD, MONITOR_MODEL, RETRAIN_MODEL, PROMOTE_MODEL, ROLLBACK_MODEL]
CLOCK_REFRESH_S = 60.0  # the loop rewrites its clock this often while it waits (it expires after ml.clock.STALE_AFTER)


@dataclass
class Loop:
    settings: object
    api: AirflowApi
    profile: Profile
    serving_url: str
    play: Play | None = None  # what to stream: the simulator on `profile` when not given
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    steps: list[dict] = field(default_factory=list)
    hours: list[dict] = field(default_factory=list)  # one record per paced hour: what it took and what happened

    def __post_init__(self) -> None:
        self.contract = load_contract(self.settings.contract)
        self.lake = Lake.from_settings(self.settings.lake)
        self.client = MlflowClient(self.settings.mlflow_tracking_uri)
        if self.play is None:
            used = self.api.covered_hours(LAKE_OFFLOAD, self.now - RETENTION)
            self.play = simulator_play(self.contract, self.profile, self.now, used)
        self.timeline = self.play.timeline
        self.lateness = self.settings.offload.lateness
        self.sink = KafkaSink(self.settings.kafka_bootstrap, self.settings.kafka.topics)
        self.chain = ChainWatch(self.api, self.lake, self.contract, self.settings, self.profile.timeout_s)
        self._clock_at: datetime | None = None
        self._clock_written = 0.0

    @property
    def first_served(self) -> datetime:
        """When the first champion takes over: the history's end plus the offload's lateness."""
        return self.timeline.onset + self.lateness

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
        try:
            self.step(f"replay {p.history_hours} h of history", self.produce, t.start, self.first_served,
                      self.first_served)
            self.step("offload the history (lake_offload backfill)", self.offload, t.start, t.onset)
            self.set_clock(self.first_served)
            self.step(f"the sidecar serves events from {self.first_served:%Y-%m-%d %H:%M}Z on", self.start_serving_at,
                      self.first_served)
            first = self.step("train and promote the first champion", self.first_champion)
            self.step(f"sidecar serves v{first}", self.wait_serving, first)
            change = f"; {self.play.change} at {self.play.change_at:%Y-%m-%d %H:%M}Z" if self.play.change_at else ""
            print(f"[loop] {len(t.hours(t.onset, t.end))} hours played one at a time{change}", flush=True)
            for end in t.hours(t.onset + HOUR, t.end + HOUR):
                self.play_hour(end)
            self.step("the outcomes observed after the last hour", self.produce, t.end, t.end,
                      datetime.now(timezone.utc))
            self.step("offload the labels that arrived after the last hour", self.late_labels)
            self.step("wait for monitoring to settle", self.chain.settle, self.keep_clock)
        finally:
            clock.clear_clock(self.lake)
        return {"first": first, "current": champion(self.client, self.settings.model_name).version,
                "first_served": self.first_served.isoformat()}

    def play_hour(self, end: datetime) -> None:
        """The hour ending at `end`, as a real-time run would have lived it (see the module's docstring)."""
        started_wall, marks = datetime.now(timezone.utc), [("start", time.monotonic())]
        at = end + self.lateness
        self.produce(end - HOUR + self.lateness, min(at, self.timeline.end), at)
        self.wait_scored()
        marks.append(("stream and score", time.monotonic()))
        self.set_clock(at)
        run_id = self.api.trigger_interval(LAKE_OFFLOAD, end - HOUR, end)
        self.api.wait_runs(LAKE_OFFLOAD, lambda runs: [r for r in runs if r["dag_run_id"] == run_id],
                           self.profile.timeout_s, f"offload of {end - HOUR:%Y-%m-%d %H}:00", poll_s=0.5,
                           logical_date_gte=(end - HOUR).isoformat(), logical_date_lte=(end - HOUR).isoformat())
        marks.append(("offload", time.monotonic()))
        decision = self.wait_decision(end)
        marks.append(("monitor", time.monotonic()))
        self.chain.wait_idle(started_wall, bool(decision.get("retrain")), self.keep_clock)
        current = self.current_champion()
        self.wait_serving(current)
        marks.append(("retrain, promotion, swap", time.monotonic()))
        took = marks[-1][1] - marks[0][1]
        record = {"hour": (end - HOUR).isoformat(), "seconds": round(took, 1), "decision": decision.get("kind"),
                  "retrain": bool(decision.get("retrain")), "champion": current,
                  "phases": {name: round(t - marks[i][1], 1) for i, (name, t) in enumerate(marks[1:])}}
        self.hours.append(record)
        phases = ", ".join(f"{k} {v:.0f} s" for k, v in record["phases"].items())
        print(f"[loop] hour {end - HOUR:%Y-%m-%d %H}:00: {record['decision']}"
              f"{' -> retrain' if record['retrain'] else ''}, champion v{current}; {took:.0f} s ({phases})", flush=True)

    # --- the clock ------------------------------------------------------------------------------
    def set_clock(self, at: datetime) -> None:
        clock.set_clock(self.lake, at)
        self._clock_at, self._clock_written = at, time.monotonic()

    def keep_clock(self) -> None:
        """Rewrite the clock now and then while waiting, so it does not expire under a long run."""
        if self._clock_at is not None and time.monotonic() - self._clock_written > CLOCK_REFRESH_S:
            self.set_clock(self._clock_at)

    # --- producing and offloading ----------------------------------------------------------------
    def produce(self, start: datetime, end: datetime, until: datetime) -> None:
        """Telemetry with event times in [start, end) and the outcomes observed before `until` into Kafka."""
        ms = lambda d: int(d.timestamp() * 1000)  # noqa: E731
        for batch in self.play.source.replay(ms(start), ms(end), ms(until)):
            self.sink.send(batch)
        report = self.sink.close()
        if not report.ok:
            raise LoopError(f"producing {start:%Y-%m-%dT%H:%M} .. {end:%H:%M}: {report.failed} failed, "
                            f"{report.undelivered} undelivered ({'; '.join(report.errors[:3])})")

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

    # --- the champion and the sidecar ------------------------------------------------------------
    def start_serving_at(self, at: datetime) -> dict[int, int]:
        """Commit the sidecar group's telemetry offsets at the first record of event time `at`: a model
        first deployed then serves the events from then on. The group must have no member yet (the
        sidecar joins it once it has a champion)."""
        topic, consumer = self.settings.topic_telemetry, self._serving_group()
        try:
            partitions = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
            wanted = [TopicPartition(topic, p, int(at.timestamp() * 1000)) for p in partitions]
            found = consumer.offsets_for_times(wanted, timeout=10)
            offsets = [TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else
                                      consumer.get_watermark_offsets(tp, timeout=10)[1]) for tp in found]
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
            except Exception as exc:  # noqa: BLE001 - the broker's refusal, said with what to do
                raise LoopError(f"cannot set the sidecar group {self.settings.serving_group}'s offsets ({exc}); "
                                f"it must not be consuming yet: `continuum-loop reset` first") from None
            return {tp.partition: tp.offset for tp in offsets}
        finally:
            consumer.close()

    def first_champion(self) -> str:
        since = datetime.now(timezone.utc)
        days = self.profile.history_hours / 24  # the window ends at the clock's hour: exactly the history
        run_id = self.api.trigger(RETRAIN_MODEL, {"reason": "first model", "window_days": round(days, 4),
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
            self.keep_clock()
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

    def current_champion(self) -> str:
        """The registry's champion (once the chain is idle: after any promotion it ran)."""
        current = champion(self.client, self.settings.model_name)
        if current is None:
            raise LoopError(f"{self.settings.model_name} has no champion; see the promote_model runs")
        return current.version

    def wait_decision(self, end: datetime) -> dict:
        """The monitor's decision for the window ending at `end`, once its run has finished."""
        key, deadline = decision_key(run_id_for(end)), time.monotonic() + self.profile.timeout_s
        while True:
            self.keep_clock()
            if self.lake.exists(key) and not self.api.active([MONITOR_MODEL]):
                return json.loads(self.lake.read_text(key))
            if time.monotonic() > deadline:
                raise LoopError(f"no decision for the window ending {end:%Y-%m-%d %H:%M}Z within "
                                f"{self.profile.timeout_s:.0f} s ({self.lake.url(key)}); see the monitor_model runs")
            time.sleep(0.5)

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
            time.sleep(1)

    def _serving_group(self) -> Consumer:
        """A client of the sidecar's consumer group that never joins it: it reads or sets its offsets."""
        return Consumer({"bootstrap.servers": self.settings.kafka_bootstrap, "group.id": self.settings.serving_group,
                         "enable.auto.commit": False})

    def wait_scored(self) -> None:
        """Until the sidecar's consumer group has committed every telemetry offset."""
        topic, consumer = self.settings.topic_telemetry, self._serving_group()
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
                time.sleep(0.2)
        finally:
            consumer.close()


def _iso(value: str) -> str:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc).isoformat()


def _complete(chosen: list[dict], wanted: set[str]) -> list[dict]:
    """The latest run of each wanted hour, or nothing until every hour has one."""
    latest = {}
    for run in sorted(chosen, key=lambda r: r.get("run_after") or ""):
        latest[_iso(run["data_interval_start"])] = run
    return list(latest.values()) if set(latest) == wanted else []




def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    shutil.move(tmp, path)
