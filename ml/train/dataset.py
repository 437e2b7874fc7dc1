"""The training set: validated telemetry hours joined with their matured outcomes, split by time.

Only hours that passed validation are read (`valid_hours`); outcomes are read from the lake through
their manifests, from the window's start until the contract's longest label delay after its end, and
only those observed by `as_of` count, so the same window and `as_of` always give the same rows. The
lineage (every hour read, with its manifest's content hash) travels with the data.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from ml.contract import Contract
from ml.lake import Lake
from ml.lake.layout import manifest_key
from ml.lake.window import Window
from ml.validation import read_hour, valid_hours


class DatasetError(ValueError):
    """There is not enough (or not the right) data to train on; the message says what is missing."""


@dataclass
class TrainingSet:
    """Labelled rows (telemetry fields + the label), sorted by event time, and where they came from."""

    frame: pd.DataFrame
    hours: list[dict] = field(default_factory=list)  # {"topic", "hour", "key", "content_sha256", "rows"}
    skipped: list[str] = field(default_factory=list)

    @property
    def data_hash(self) -> str:
        """sha256 of the hours read and their manifest hashes: equal hashes mean equal inputs."""
        items = sorted((h["topic"], h["hour"], h["content_sha256"]) for h in self.hours)
        return hashlib.sha256(json.dumps(items).encode()).hexdigest()


@dataclass(frozen=True)
class Split:
    """Time-ordered split: train, then validation (early stopping), then the most recent rows (holdout)."""

    train: pd.DataFrame
    valid: pd.DataFrame
    holdout: pd.DataFrame


def _manifest(lake: Lake, kind: str, window: Window) -> dict | None:
    try:
        return json.loads(lake.read_text(manifest_key(kind, window)))
    except FileNotFoundError:
        return None


def build_training_set(lake: Lake, contract: Contract, start: datetime, end: datetime, as_of: datetime) -> TrainingSet:
    """Telemetry of the valid hours in [start, end) inner-joined on the label's join key with the outcomes
    observed before `as_of`; events whose outcome has not matured yet are left out."""
    label = contract.label
    out = TrainingSet(pd.DataFrame())
    frames = _read_hours(lake, contract, "telemetry", valid_hours(lake, "telemetry", start, end), out)
    label_end = min(end + timedelta(minutes=label.max_delay_minutes), as_of + timedelta(hours=1))
    outcome_hours = (_manifest(lake, "outcomes", w) for w in Window(start, max(label_end, start + timedelta(hours=1))).hours())
    outcomes = _read_hours(lake, contract, "outcomes", [m for m in outcome_hours if m is not None], out)
    if not frames or not outcomes:
        raise DatasetError(f"no {'valid telemetry' if not frames else 'outcome'} hours in the lake between "
                           f"{start.isoformat()} and {end.isoformat()}; run lake_offload for that range first")
    telemetry = pd.concat(frames, ignore_index=True)
    labels = pd.concat(outcomes, ignore_index=True)
    matured = pd.to_datetime(labels[label.observed_at], utc=True) < pd.Timestamp(as_of)
    labels = labels.loc[matured, [label.join_key, label.field]].drop_duplicates(label.join_key, keep="last")
    joined = telemetry.merge(labels, on=label.join_key, how="inner", validate="many_to_one")
    out.frame = joined.sort_values([contract.event_time, contract.event_id], kind="stable", ignore_index=True)
    return out


def mature_hours(lake: Lake, contract: Contract, start: datetime, end: datetime) -> list[datetime]:
    """The valid telemetry hours in [start, end) whose labels have all had time to arrive and are in the
    lake: every outcome hour up to the contract's longest label delay after the hour has been offloaded."""
    delay = timedelta(minutes=contract.label.max_delay_minutes)
    offloaded: dict[datetime, bool] = {}

    def outcomes_in(hour: datetime) -> bool:
        if hour not in offloaded:
            offloaded[hour] = _manifest(lake, "outcomes", Window.hour(hour)) is not None
        return offloaded[hour]

    out = []
    for manifest in valid_hours(lake, "telemetry", start, end):
        hour = Window.hour(manifest["window"]["start"]).start
        label_hours = Window(hour, hour + timedelta(hours=1) + delay).hours()
        if all(outcomes_in(w.start) for w in label_hours):
            out.append(hour)
    return out


def _read_hours(lake: Lake, contract: Contract, kind: str, manifests: list[dict], out: TrainingSet) -> list[pd.DataFrame]:
    """The frames of the given hours; an hour whose files fail their manifest check is skipped and noted."""
    frames = []
    for manifest in manifests:
        window = Window.hour(manifest["window"]["start"])
        df, problems = read_hour(lake, contract, kind, manifest)
        if problems:
            out.skipped.append(f"{kind} {window.partition_path}: {'; '.join(problems)}")
            continue
        frames.append(df)
        out.hours.append(_lineage(kind, window, manifest))
    return frames


def _lineage(kind: str, window: Window, manifest: dict) -> dict:
    return {"topic": kind, "hour": window.start.isoformat(),
            "key": manifest_key(kind, window),
            "content_sha256": manifest.get("content_sha256", ""), "rows": int(manifest.get("rows", 0))}


def split_sizes(n: int, holdout_fraction: float, validation_fraction: float) -> tuple[int, int]:
    """Where `time_split` cuts `n` time-ordered rows: (first validation row, first holdout row)."""
    n_hold = int(np.ceil(n * holdout_fraction))
    n_val = int(np.ceil(n * validation_fraction))
    return n - n_hold - n_val, n - n_hold


def time_split(frame: pd.DataFrame, holdout_fraction: float, validation_fraction: float) -> Split:
    """Split rows already sorted by event time: the last `holdout_fraction` is the holdout, the
    `validation_fraction` before it the validation set, the rest the training set."""
    cut_val, cut_hold = split_sizes(len(frame), holdout_fraction, validation_fraction)
    return Split(frame.iloc[:cut_val], frame.iloc[cut_val:cut_hold], frame.iloc[cut_hold:])


def check_split(split: Split, label: str, min_rows: int, min_per_class: int) -> None:
    """Refuse, naming the shortfall, a split with too few rows or a part missing one of the classes."""
    check_counts(len(split.train) + len(split.valid) + len(split.holdout), int(split.train[label].sum()),
                 len(split.train), {part: set(getattr(split, part)[label].unique().tolist()) for part in ("valid", "holdout")},
                 min_rows, min_per_class)


def check_counts(total: int, positives: int, train_rows: int, labels: dict[str, set], min_rows: int,
                 min_per_class: int) -> None:
    """`check_split` on counts: all rows, the training rows and their failures, and the label values
    of the `valid` and `holdout` parts (a window streamed from the lake is never one frame)."""
    if total < min_rows:
        raise DatasetError(f"only {total} labelled rows in the window; at least {min_rows} are needed "
                           f"(CONTINUUM_RETRAIN_MIN_ROWS), widen the window or wait for more labels")
    negatives = train_rows - positives
    if min(positives, negatives) < min_per_class:
        raise DatasetError(f"the training rows hold {positives} failures and {negatives} non-failures; each class "
                           f"needs at least {min_per_class} (CONTINUUM_RETRAIN_MIN_PER_CLASS)")
    for part in ("valid", "holdout"):
        if labels[part] != {0, 1}:
            raise DatasetError(f"the {part} rows hold labels {sorted(labels[part])} only; both classes are needed to "
                               f"evaluate, widen the window")
