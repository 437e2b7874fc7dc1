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

A step that fails stops the loop with the step's name and where to look. The steps' parts live beside
this module: `feed` (into Kafka and the lake), `sidecar`, `champion` (the registry), `chain` (the
monitoring chain's runs), `hour` (one paced hour) and `timeline` (hours and the loop's clock).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import requests

from ml.contract import load_contract
from ml.lake import Lake
from ml.lake.window import HOUR
from plugins.dag_ids import LAKE_OFFLOAD, MONITOR_MODEL, PROMOTE_MODEL, RETRAIN_MODEL, ROLLBACK_MODEL
from tooling.loop.airflow_api import AirflowApi, AirflowError
from tooling.loop.chain import ChainWatch
from tooling.loop.champion import Champions
from tooling.loop.feed import Feed
from tooling.loop.hour import play_hour
from tooling.loop.sidecar import Sidecar
from tooling.loop.stream import Play, simulator_play
from tooling.loop.timeline import RETENTION, LoopClock, LoopError, Profile

DAGS = [LAKE_OFFLOAD, MONITOR_MODEL, RETRAIN_MODEL, PROMOTE_MODEL, ROLLBACK_MODEL]


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
        if self.play is None:
            used = self.api.covered_hours(LAKE_OFFLOAD, self.now - RETENTION)
            self.play = simulator_play(self.contract, self.profile, self.now, used)
        self.timeline = self.play.timeline
        self.lateness = self.settings.offload.lateness
        timeout_s = self.profile.timeout_s
        self.clock = LoopClock(self.lake)
        self.feed = Feed(self.play, self.api, self.lake, self.contract, self.settings, timeout_s)
        self.sidecar = Sidecar(self.settings, self.serving_url, timeout_s)
        self.champions = Champions(self.api, self.lake, self.settings, self.profile, self.clock.keep)
        self.chain = ChainWatch(self.api, self.lake, self.contract, self.settings, timeout_s)

    @property
    def first_served(self) -> datetime:
        """When the first champion takes over: the history's end plus the offload's lateness."""
        return self.timeline.onset + self.lateness

    def step(self, name: str, fn, *args):
        """Run one named step, timed and recorded; its failure becomes a LoopError naming the step."""
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
        """The whole loop (see the module's docstring); returns the first champion, the champion at the
        end and when the first one began serving."""
        t, p, feed = self.timeline, self.profile, self.feed
        self.step("wait for the DAGs to be parsed", self.api.wait_parsed, DAGS)
        self.step("cancel unfinished offload backfills", self.api.cancel_backfills, LAKE_OFFLOAD)
        self.step("wait for earlier offload runs of these hours", feed.offload_idle)
        try:
            self.step(f"replay {p.history_hours} h of history", feed.produce, t.start, self.first_served,
                      self.first_served)
            self.step("offload the history (lake_offload backfill)", feed.offload, t.start, t.onset)
            self.clock.set(self.first_served)
            self.step(f"the sidecar serves events from {self.first_served:%Y-%m-%d %H:%M}Z on",
                      self.sidecar.start_serving_at, self.first_served)
            first = self.step("train and promote the first champion", self.champions.first_champion)
            self.step(f"sidecar serves v{first}", self.sidecar.wait_serving, first)
            change = f"; {self.play.change} at {self.play.change_at:%Y-%m-%d %H:%M}Z" if self.play.change_at else ""
            print(f"[loop] {len(t.hours(t.onset, t.end))} hours played one at a time{change}", flush=True)
            for end in t.hours(t.onset + HOUR, t.end + HOUR):
                self.hours.append(play_hour(self, end))
            self.step("the outcomes observed after the last hour", feed.produce, t.end, t.end,
                      datetime.now(timezone.utc))
            self.step("offload the labels that arrived after the last hour", feed.late_labels)
            self.step("wait for monitoring to settle", self.chain.settle, self.clock.keep)
        finally:
            self.clock.clear()
        return {"first": first, "current": self.champions.current(), "first_served": self.first_served.isoformat()}


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    shutil.move(tmp, path)
