"""A recorded file as the backtest reads it: each event-time hour's decoded telemetry, its validation,
and every outcome with the time it is observed, all in memory.

The rows come from the replay source (`ml.replay.FileSource`), decoded by the topics' codecs as the
sidecar and the offload decode them, so rows that break the contract are left out (and counted) exactly
as a replay through Kafka would quarantine them. Each hour is validated once with the contract's Great
Expectations suite, as lake_offload validates it; validation does not depend on the retraining policy,
so every policy compared reads the same verdicts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from ml.contract import Contract
from ml.lake import Lake
from ml.lake.window import HOUR, Window
from ml.monitor.live import read_hours
from ml.replay import FileSource, ReplayOptions
from ml.validation import build_suite, load_suite, valid_hours
from ml.validation.engine import failures, run_suite
from ml.validation.suite import WINDOW_END, WINDOW_START, SuiteError

log = logging.getLogger(__name__)


@dataclass
class Stream:
    """The file's hours in event-time order (`hours`: their starts), each hour's decoded telemetry
    (`events`), which hours passed validation (`valid`, with the critical failures of those that did
    not), and every outcome: join key, label and when it is observed (`labels`)."""

    contract: Contract
    hours: list[datetime]
    events: dict[datetime, pd.DataFrame]
    labels: pd.DataFrame
    valid: dict[datetime, bool]
    problems: dict[datetime, list[str]] = field(default_factory=dict)
    rejected: int = 0
    suite: str = ""

    @cached_property
    def outcomes(self) -> pd.DataFrame:
        """Each event's outcome (`label`) and when it is observed (`observed_at`), indexed by join key."""
        label = self.contract.label
        return self.labels.set_index(label.join_key)[[label.field, label.observed_at]].rename(
            columns={label.field: "label", label.observed_at: "observed_at"})

    def frame(self, hours: list[datetime]) -> pd.DataFrame:
        """The telemetry of these hours, in order, as one frame."""
        frames = [self.events[h] for h in hours if h in self.events]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def valid_hours(self, start: datetime, end: datetime) -> list[datetime]:
        """The hours starting in [start, end) that hold events and passed validation, oldest first."""
        return [h for h in self.hours if start <= h < end and self.valid.get(h)]

    def training_frame(self, start: datetime, end: datetime, as_of: datetime) -> pd.DataFrame:
        """What `ml.train.build_training_set` reads from the lake for this window: the valid hours in
        [start, end) joined with the outcomes observed before `as_of` (and in the outcome hours up to
        the label's longest delay after `end`), sorted by event time."""
        label = self.contract.label
        events = self.frame(self.valid_hours(start, end))
        if events.empty:
            return events
        label_end = min(end + timedelta(minutes=label.max_delay_minutes), as_of + HOUR)
        hours = self.labels[label.observed_at].dt.floor("h")
        seen = self.labels[(self.labels[label.observed_at] < pd.Timestamp(as_of)) & (hours < pd.Timestamp(label_end))]
        joined = events.merge(seen[[label.join_key, label.field]], on=label.join_key, how="inner")
        return joined.sort_values([self.contract.event_time, self.contract.event_id], kind="stable", ignore_index=True)


def load_stream(path: str, contract: Contract, options: ReplayOptions, lateness: timedelta, validate: bool = True,
                expectations_dir: str | None = None, shift: timedelta = timedelta(0)) -> Stream:
    """Read and decode the file hour by hour, then validate each hour that holds events (`validate`
    False marks every such hour valid, for quick looks). `shift` moves the file's times as a replay
    through the loop moves them (whole days), so the two judge the same windows."""
    source = FileSource(path, contract, options, shift)
    label = contract.label
    hours, events, outcomes, rejected = [], {}, [], 0
    for hour in source.hours():
        rejected += len(hour.rejects)
        if hour.labels.num_rows:
            outcomes.append(hour.labels.select([label.join_key, label.field, label.observed_at]).to_pandas())
        if hour.events.num_rows:
            hours.append(hour.start)
            events[hour.start] = hour.events.to_pandas()
    labels = pd.concat(outcomes, ignore_index=True) if outcomes else pd.DataFrame(
        columns=[label.join_key, label.field, label.observed_at])
    labels[label.observed_at] = pd.to_datetime(labels[label.observed_at], utc=True)
    labels = labels.drop_duplicates(label.join_key, keep="last")
    stream = Stream(contract, hours, events, labels, {h: True for h in hours}, rejected=rejected)
    if validate:
        validate_hours(stream, lateness, expectations_dir)
    return stream


def stream_from_lake(lake: Lake, contract: Contract, start: datetime, end: datetime) -> Stream:
    """The hours [start, end) a run through the loop offloaded, read back from the lake: each hour's
    telemetry, its validation as the offload recorded it, and every outcome offloaded up to the label's
    longest delay after `end`. What the DAGs saw, for a backtest of the same events (`ml.backtest.agree`)."""
    label = contract.label
    valid = {datetime.fromisoformat(m["window"]["start"]) for m in valid_hours(lake, "telemetry", start, end)}
    hours, events = [], {}
    for i in range(int((end - start) / HOUR)):
        hour = start + i * HOUR
        frame = read_hours(lake, contract, "telemetry", Window(hour, hour + HOUR))
        if len(frame):
            hours.append(hour)
            events[hour] = frame.reset_index(drop=True)
    delay = timedelta(minutes=label.max_delay_minutes)
    labels = read_hours(lake, contract, "outcomes", Window(start, end + delay + HOUR))
    labels = labels[[label.join_key, label.field, label.observed_at]] if len(labels) else pd.DataFrame(
        columns=[label.join_key, label.field, label.observed_at])
    labels[label.observed_at] = pd.to_datetime(labels[label.observed_at], utc=True)
    labels = labels.drop_duplicates(label.join_key, keep="last").reset_index(drop=True)
    return Stream(contract, hours, events, labels, {h: h in valid for h in hours}, suite="as the offload validated")


def validate_hours(stream: Stream, lateness: timedelta, expectations_dir: str | None = None) -> None:
    """Each hour against the contract's suite (the committed one, or one derived from the contract
    when the repository has none for it), with the window's bounds give or take the lateness."""
    try:
        suite = load_suite(stream.contract, expectations_dir)
        stream.suite = f"{stream.contract.name} (committed suite)"
    except SuiteError as exc:
        if "no expectation suite" not in str(exc):
            raise
        suite = build_suite(stream.contract)
        stream.suite = f"{stream.contract.name} (derived from the contract: no committed suite)"
    for hour in stream.hours:
        df = stream.events[hour].copy()
        # one Kafka partition, records in file order: what the offload writes beside each event
        df["kafka_partition"] = np.zeros(len(df), dtype="int32")
        df["kafka_offset"] = np.arange(len(df), dtype="int64")
        bounds = {WINDOW_START: (hour - lateness).isoformat(), WINDOW_END: (hour + HOUR + lateness).isoformat()}
        critical, _ = failures(run_suite(df, suite, bounds, run_name=f"backtest-{hour:%Y-%m-%dT%H}"))
        stream.valid[hour] = not critical
        if critical:
            stream.problems[hour] = critical
            log.warning("hour %s is invalid: %s", hour.isoformat(), "; ".join(critical))
