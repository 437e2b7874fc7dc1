"""What each model version served, read from the lake once per hour: the events per hour per version
that the serving chart stacks, and, given the contract, the live figures each version realized on the
events of a window once their labels arrived.

The monitor judges live metrics on hours whose labels had all arrived by its run, so the hours it has
just monitored are judged a label delay later by a later run, and the last hours of a loop never are.
The report measures them at report time instead: for a window [start, end), every version's figures on
the predictions it served for those events (`ml.evaluate.figures_by_version`), with every outcome the
lake holds by then. A window counts once its labels have all had time to arrive: the offloaded outcome
hours reach its end plus the contract's longest label delay; until then it is left out, as figures on
the quickest labels alone would be biased.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd
import pyarrow.parquet as pq

from ml.contract import Contract
from ml.evaluate import figures_by_version
from ml.lake import Lake
from ml.lake.layout import is_manifest_key, partition_hour, raw_prefix
from ml.lake.window import HOUR

VERSION, MODEL = "model_version", "model_name"


@dataclass
class Served:
    """Events per hour start per version (every delivered prediction counts), each hour's predictions
    (one per event id and version, with their label, missing while no outcome came) and the end of the
    latest offloaded outcome hour."""

    counts: dict[datetime, dict[str, int]] = field(default_factory=dict)
    hours: dict[datetime, pd.DataFrame] = field(default_factory=dict)
    labels_until: datetime | None = None


def _manifests(lake: Lake, topic_kind: str, problems: list[str]):
    """(hour start, manifest) of every offloaded hour of a topic, oldest first; an unreadable one is named."""
    for key in lake.list(raw_prefix(topic_kind)):
        if not is_manifest_key(key):
            continue
        try:
            manifest = json.loads(lake.read_text(key))
            window = manifest.get("window") if isinstance(manifest.get("window"), dict) else {}
            start = datetime.fromisoformat(window["start"]) if window.get("start") else partition_hour(key)
            yield key, start, manifest
        except (ValueError, KeyError, TypeError, OSError) as exc:
            problems.append(f"{key}: hour left out, {exc}")


def _read(lake: Lake, manifest: dict, columns: list[str]) -> pd.DataFrame:
    """The wanted columns (those present) of every file an hour's manifest lists."""
    frames = []
    for entry in manifest.get("files") or []:
        source = pq.ParquetFile(io.BytesIO(lake.read_bytes(entry["key"])))
        names = source.schema_arrow.names
        if VERSION in columns and VERSION not in names:
            raise ValueError(f"{entry['key']} has no {VERSION} column")
        frames.append(source.read(columns=[c for c in columns if c in names]).to_pandas())
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def read_served(lake: Lake, model_name: str, contract: Contract | None, since: datetime | None,
                keep_from: datetime | None, problems: list[str]) -> Served:
    """Count `model_name`'s predictions of the hours ending after `since`, and, with the contract, keep
    those of the hours from `keep_from` with their labels. Only the columns needed are read."""
    served = Served()
    wanted = [MODEL, VERSION] + ([contract.event_id, "score", "decision"] if contract is not None else [])
    for key, hour, manifest in _manifests(lake, "predictions", problems):
        counted = since is None or hour + HOUR > since
        kept = contract is not None and (keep_from is None or hour >= keep_from)
        if not (counted or kept):
            continue
        try:
            df = _read(lake, manifest, wanted)
        except (ValueError, KeyError, TypeError, OSError) as exc:
            problems.append(f"{key}: hour left out, {exc}")
            continue
        if MODEL in df:
            df = df[df[MODEL].isna() | (df[MODEL] == model_name)]
        versions = df[VERSION].astype(object).where(df[VERSION].notna(), "unknown").astype(str)
        if counted:
            served.counts[hour] = {str(v): int(n) for v, n in versions.value_counts().items()}
        if kept:
            served.hours[hour] = df.assign(**{VERSION: versions}).drop_duplicates(
                [contract.event_id, VERSION], keep="last")
    if contract is not None:
        _join_labels(lake, contract, keep_from, served, problems)
    served.counts = dict(sorted(served.counts.items()))
    return served


def _join_labels(lake: Lake, contract: Contract, keep_from: datetime | None, served: Served,
                 problems: list[str]) -> None:
    """Give every kept prediction its outcome (the latest per event id) from the outcome hours from `keep_from`."""
    label = contract.label
    frames = []
    for key, hour, manifest in _manifests(lake, "outcomes", problems):
        if keep_from is not None and hour + HOUR <= keep_from:
            continue
        try:
            frames.append(_read(lake, manifest, [label.join_key, label.field]))
        except (ValueError, KeyError, TypeError, OSError) as exc:
            problems.append(f"{key}: hour left out, {exc}")
            continue
        if served.labels_until is None or hour + HOUR > served.labels_until:
            served.labels_until = hour + HOUR
    outcomes = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[label.join_key, label.field])
    outcomes = outcomes.drop_duplicates(label.join_key, keep="last").set_index(label.join_key)[label.field]
    for hour, df in served.hours.items():
        served.hours[hour] = df.assign(**{label.field: df[contract.event_id].map(outcomes)})


def realized(served: Served, contract: Contract, start: datetime, end: datetime) -> dict[str, dict] | None:
    """Every version's figures on the events of [start, end) with the labels in the lake, or None while
    the window's labels may still be arriving (or nothing was served in it)."""
    delay = timedelta(hours=math.ceil(contract.label.max_delay_minutes / 60))
    if served.labels_until is None or served.labels_until < end + delay:
        return None
    frames = [df for hour, df in served.hours.items() if start <= hour < end]
    if not frames:
        return None
    preds = pd.concat(frames, ignore_index=True)
    labelled = preds[preds[contract.label.field].notna()]
    return figures_by_version(preds, labelled, contract.label.field) or None
