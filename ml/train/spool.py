"""A window too large for one frame: its labelled rows written hour by hour to local Parquet files.

    with tempfile.TemporaryDirectory() as tmp:
        spool = spool_window(lake, contract, start, end, as_of, Path(tmp))   # one file per telemetry hour
        spool.split(0.2, 0.15)                                              # train / valid / holdout per row

The rows are those `build_training_set` would give: telemetry of the valid hours in [start, end)
inner-joined with the outcomes observed before `as_of`. One telemetry hour is held at a time, with
the outcome hours that can label it (from the hour before it until the contract's longest label
delay after it); every outcome hour of the window is still read once, so the lineage and its hash
are the same. Each file keeps the event's fields and the label, sorted by event time and id, and the
split cuts the window where `time_split` cuts the sorted frame, without sorting the whole window.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from ml.contract import Contract
from ml.lake import Lake
from ml.lake.window import HOUR, Window
from ml.train.dataset import DatasetError, TrainingSet, _lineage, _manifest, split_sizes
from ml.validation import read_hour, valid_hours

TRAIN, VALID, HOLDOUT = 0, 1, 2


@dataclass
class Spool(TrainingSet):
    """The window's labelled rows as files (`frame` stays empty), each file's event times (int64) and
    labels, and once `split` ran, each row's part (TRAIN, VALID or HOLDOUT)."""

    folder: Path = Path(".")
    files: list[Path] = field(default_factory=list)
    ts: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    parts: list[np.ndarray] = field(default_factory=list)
    event_id: str = "event_id"
    event_time: str = "ts"

    @property
    def rows(self) -> int:
        return sum(len(t) for t in self.ts)

    def count(self, part: int, label: int | None = None) -> int:
        """Rows of a part (with `label`, when given)."""
        return sum(int(((p == part) & ((y == label) if label is not None else True)).sum())
                   for p, y in zip(self.parts, self.labels))

    def read(self, i: int, columns: list[str] | None = None) -> pd.DataFrame:
        return pd.read_parquet(self.files[i], columns=columns)

    def split(self, holdout_fraction: float, validation_fraction: float) -> None:
        """Mark each row TRAIN, VALID or HOLDOUT as `time_split` would on the window sorted by event time
        and id: a row's part is the number of cuts at or before it, a cut being the (time, id) of the row
        at a cut position."""
        n = self.rows
        ordered = np.sort(np.concatenate(self.ts)) if n else np.array([], dtype="int64")
        cuts = [self._key_at(ordered, pos) for pos in split_sizes(n, holdout_fraction, validation_fraction)
                if 0 < pos < n]
        before = sum(pos <= 0 for pos in split_sizes(n, holdout_fraction, validation_fraction))
        self.parts = []
        for i, ts in enumerate(self.ts):
            part = np.full(len(ts), before, dtype="int8")
            ids = None
            for key_ts, key_id in cuts:
                later = ts > key_ts
                tied = ts == key_ts
                if tied.any():
                    ids = self.read(i, [self.event_id])[self.event_id].to_numpy() if ids is None else ids
                    later |= tied & (ids >= key_id)
                part += later.astype("int8")
            self.parts.append(part)

    def _key_at(self, ordered: np.ndarray, pos: int) -> tuple[int, str]:
        """(event time, event id) of the row at `pos` in the window sorted by both."""
        key_ts = int(ordered[pos])
        rank = pos - int(np.searchsorted(ordered, key_ts, side="left"))
        ids = []
        for i, ts in enumerate(self.ts):
            if (ts == key_ts).any():
                ids += self.read(i, [self.event_id])[self.event_id].to_numpy()[ts == key_ts].tolist()
        return key_ts, sorted(ids)[rank]


def window_rows(lake: Lake, start: datetime, end: datetime) -> int:
    """Telemetry rows of the valid hours in [start, end), from their manifests (nothing else is read)."""
    return sum(int(m.get("rows", 0)) for m in valid_hours(lake, "telemetry", start, end))


def spool_window(lake: Lake, contract: Contract, start: datetime, end: datetime, as_of: datetime,
                 folder: Path) -> Spool:
    """Write the window's labelled rows to `folder`, one Parquet file per valid telemetry hour."""
    label = contract.label
    keep = list(dict.fromkeys(contract.fields + [label.field]))
    spool = Spool(pd.DataFrame(), folder=folder, event_id=contract.event_id, event_time=contract.event_time)
    label_end = min(end + timedelta(minutes=label.max_delay_minutes), as_of + HOUR)
    outcome_hours = Window(start, max(label_end, start + HOUR)).hours()
    buffer: OrderedDict[datetime, pd.DataFrame] = OrderedDict()
    next_outcome, outcomes_seen = 0, 0
    for manifest in valid_hours(lake, "telemetry", start, end):
        window = Window.hour(manifest["window"]["start"])
        reach = window.end + timedelta(minutes=label.max_delay_minutes)
        while next_outcome < len(outcome_hours) and outcome_hours[next_outcome].start < reach:
            outcomes_seen += _read_outcomes(lake, contract, outcome_hours[next_outcome], as_of, buffer, spool)
            next_outcome += 1
        for hour in [h for h in buffer if h < window.start - HOUR]:
            del buffer[hour]
        df, problems = read_hour(lake, contract, "telemetry", manifest)
        if problems:
            spool.skipped.append(f"telemetry {window.partition_path}: {'; '.join(problems)}")
            continue
        spool.hours.append(_lineage("telemetry", window, manifest))
        labels = pd.concat(buffer.values(), ignore_index=True) if buffer else pd.DataFrame(columns=[label.join_key, label.field])
        labels = labels.drop_duplicates(label.join_key, keep="last")
        joined = df.merge(labels, on=label.join_key, how="inner", validate="many_to_one")
        if joined.empty:
            continue
        joined = joined.sort_values([contract.event_time, contract.event_id], kind="stable", ignore_index=True)
        path = folder / f"hour-{len(spool.files):05d}.parquet"
        joined[keep].to_parquet(path, index=False)
        spool.files.append(path)
        spool.ts.append(joined[contract.event_time].astype("int64").to_numpy())
        spool.labels.append(joined[label.field].to_numpy(dtype="int8"))
    for hour in outcome_hours[next_outcome:]:  # the rest of the window's outcome hours, for the lineage
        outcomes_seen += _read_outcomes(lake, contract, hour, as_of, OrderedDict(), spool)
    telemetry_seen = sum(h["topic"] == "telemetry" for h in spool.hours)
    if not telemetry_seen or not outcomes_seen:
        raise DatasetError(f"no {'valid telemetry' if not telemetry_seen else 'outcome'} hours in the lake between "
                           f"{start.isoformat()} and {end.isoformat()}; run lake_offload for that range first")
    return spool


def _read_outcomes(lake: Lake, contract: Contract, window: Window, as_of: datetime,
                   buffer: OrderedDict, spool: Spool) -> int:
    """Read one outcome hour's matured labels into `buffer` (noting its lineage); 1 when it was read."""
    manifest = _manifest(lake, "outcomes", window)
    if manifest is None:
        return 0
    label = contract.label
    df, problems = read_hour(lake, contract, "outcomes", manifest)
    if problems:
        spool.skipped.append(f"outcomes {window.partition_path}: {'; '.join(problems)}")
        return 0
    spool.hours.append(_lineage("outcomes", window, manifest))
    matured = pd.to_datetime(df[label.observed_at], utc=True) < pd.Timestamp(as_of)
    buffer[window.start] = df.loc[matured, [label.join_key, label.field]]
    return 1
