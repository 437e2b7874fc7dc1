"""A champion's drift reference, kept per hour of the day: its training sample, plus the hours it served.

Machines run warmer in the afternoon than at night, so a window is compared with the reference rows of
the same hours of the day. A champion trained on a few hours (a regime retrain learns from 6) has a
reference for those hours of the day only. A window holding any other hour of the day is not judged for
drift (comparing it with the whole reference would read the daily cycle as drift): the live metrics
watch it alone. Once the champion has served such an hour, with valid data and live metrics judged
healthy, that hour's rows, sampled to the reference's size per hour, become the reference of its hour
of the day, recorded in the lake beside the version:

    registry/references/<model>/<version>/reference.json           which hour of the day came from where
    registry/references/<model>/<version>/reference.<gen>.parquet  the rows added from served hours

    reference = load_reference(lake, contract, tracking_uri, model, info)
    reference.missing({6, 7})   # [6, 7]: hours of the day without a reference yet
    reference.rows({10, 11})    # the reference rows of those hours of the day
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property

import pandas as pd

from ml.contract import Contract
from ml.lake import Lake
from ml.lake.layout import reference_index_key, reference_key
from ml.monitor.champion import ChampionInfo, reference_sample
from ml.settings import DriftSettings, RegistrySettings

TRAINING = "training"
MIN_REFERENCE_ROWS = 1000


def _hour_of_day(contract: Contract, frame: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(frame[contract.event_time], utc=True).dt.hour.reset_index(drop=True)


def hour_label(hour: datetime | str) -> str:
    """A lake hour as its reference records it: `2026-11-22T06`."""
    return pd.Timestamp(hour).tz_convert("UTC").strftime("%Y-%m-%dT%H")


@dataclass(frozen=True)
class Reference:
    """The training rows, the rows added from served hours, where each hour of the day's rows came from
    (`training` or a lake hour such as `2026-11-22T06`) and the rows an added hour is sampled to."""

    contract: Contract
    training: pd.DataFrame
    added: pd.DataFrame
    sources: dict[int, str]
    per_hour: int

    @classmethod
    def from_training(cls, contract: Contract, training: pd.DataFrame) -> "Reference":
        """The reference of a training sample: the hours of the day it holds rows of."""
        covered = sorted(set(_hour_of_day(contract, training).tolist()))
        per_hour = max(1, round(len(training) / len(covered))) if covered else 0
        return cls(contract, training.reset_index(drop=True), training.iloc[:0].reset_index(drop=True),
                   {h: TRAINING for h in covered}, per_hour)

    @cached_property
    def frame(self) -> pd.DataFrame:
        """Training and added rows together."""
        return pd.concat([self.training, self.added], ignore_index=True) if len(self.added) else self.training

    @cached_property
    def _hours(self) -> pd.Series:
        return _hour_of_day(self.contract, self.frame)

    def missing(self, hours_of_day) -> list[int]:
        """The hours of the day among `hours_of_day` with no reference yet, in order."""
        return sorted(set(hours_of_day) - set(self.sources))

    def rows(self, hours_of_day) -> pd.DataFrame:
        """The reference rows of `hours_of_day`."""
        return self.frame[self._hours.isin(set(hours_of_day)).to_numpy()]

    def with_served(self, served: pd.DataFrame, hours: list[str]) -> tuple["Reference", list[str]]:
        """This reference with the served lake `hours` (rows of `served`) whose hour of the day it lacks,
        each sampled to `per_hour` rows (the earliest such hour wins an hour of the day); and the lake
        hours added. Pure: nothing is written."""
        times = pd.to_datetime(served[self.contract.event_time], utc=True).dt.floor("h")
        sources, frames, added = dict(self.sources), [self.added], []
        for hour in sorted(hours):
            start = pd.Timestamp(hour).tz_convert("UTC")
            if start.hour in sources:
                continue
            rows = served[(times == start).to_numpy()]
            if rows.empty:
                continue
            rows = rows.sample(min(self.per_hour, len(rows)), random_state=int(start.timestamp()) % 2**32)
            frames.append(rows[[c for c in self.training.columns if c in rows.columns]].sort_index())
            sources[start.hour] = hour_label(start)
            added.append(hour_label(start))
        if not added:
            return self, []
        return replace(self, added=pd.concat(frames, ignore_index=True), sources=sources), added

    def record(self) -> dict:
        """Where each hour of the day's rows came from, keyed `00`..`23`."""
        return {f"{h:02d}": self.sources[h] for h in sorted(self.sources)}


def same_hours_of_day(reference: Reference, hours: list[str], min_rows: int) -> tuple[pd.DataFrame | None, str]:
    """The reference rows of the window's hours of the day, or None and why the window cannot be judged
    for drift: an hour of the day the reference does not hold yet, or fewer than `min_rows` rows."""
    wanted = {pd.Timestamp(h).tz_convert("UTC").hour for h in hours}
    missing = reference.missing(wanted)
    if missing:
        return None, f"no reference for hours of day {', '.join(f'{h:02d}' for h in missing)} yet"
    rows = reference.rows(wanted)
    if len(rows) < min_rows:
        return None, f"the reference holds {len(rows)} rows of these hours of the day, fewer than {min_rows}"
    return rows, f"{len(rows)} reference rows of the same hours of the day"


def load_reference(lake: Lake, contract: Contract, tracking_uri: str, model: str, info: ChampionInfo) -> Reference:
    """The champion's reference: the training sample logged with its run, merged with the hours it served."""
    reference = Reference.from_training(contract, reference_sample(tracking_uri, info.run_id))
    index_key = reference_index_key(model, info.version)
    try:
        index = json.loads(lake.read_text(index_key))
    except FileNotFoundError:
        return reference
    try:
        added = pd.read_parquet(io.BytesIO(lake.read_bytes(index["rows"])))
        sources = {int(h): source for h, source in index["hours"].items()}
    except (FileNotFoundError, KeyError, ValueError) as exc:
        raise ValueError(f"{lake.url(index_key)} is unreadable ({exc!r}); delete it and the monitor starts the "
                         "reference over from the training sample") from None
    return replace(reference, added=added, sources={**sources, **reference.sources})


def save_reference(lake: Lake, model: str, version: str, run_id: str, reference: Reference) -> str:
    """Write the added rows under a new name, then the index naming them (a reader sees the old reference
    or the new one, whole); returns the index key."""
    rows_key = reference_key(model, version, uuid.uuid4().hex[:12])
    buffer = io.BytesIO()
    reference.added.to_parquet(buffer, index=False)
    lake.write_bytes(rows_key, buffer.getvalue())
    index_key = reference_index_key(model, version)
    lake.write_text(index_key, json.dumps({"model": model, "version": str(version), "run_id": run_id,
                                           "rows_per_hour": reference.per_hour, "rows": rows_key,
                                           "hours": reference.record()}, indent=2, sort_keys=True))
    return index_key


class ReferenceCache:
    """The champion's reference (training sample and served hours), fetched once per run of many hours."""

    def __init__(self, lake: Lake, contract: Contract, registry: RegistrySettings):
        self.lake, self.contract, self.registry, self._refs = lake, contract, registry, {}

    def get(self, info: ChampionInfo) -> Reference:
        if info.run_id not in self._refs:
            self._refs[info.run_id] = load_reference(self.lake, self.contract, self.registry.tracking_uri,
                                                     self.registry.model_name, info)
        return self._refs[info.run_id]

    def learn(self, info: ChampionInfo, served: pd.DataFrame, hours: list[str]) -> list[str]:
        """Add the served `hours` whose hour of the day the reference lacks; returns the lake hours added."""
        reference, added = self.get(info).with_served(served, hours)
        if added:
            save_reference(self.lake, self.registry.model_name, info.version, info.run_id, reference)
            self._refs[info.run_id] = reference
        return added


def drift_reference(drift: DriftSettings, reference: Reference, hours: list[str]) -> tuple[pd.DataFrame | None, str]:
    """What the window's hours are compared with: the same hours of the day of the reference (or None,
    and why the window is not judged for drift), or the whole reference when hours are not matched."""
    if not drift.match_hour_of_day:
        return reference.frame, f"{len(reference.frame)} reference rows of every hour of the day"
    return same_hours_of_day(reference, hours, MIN_REFERENCE_ROWS)
