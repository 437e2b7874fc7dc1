"""The drift summaries of lake hours: written by the offload beside the hour's manifest, merged per window.

The offload summarizes an hour's rows while they are still on its disk and publishes the summary with
the hour's generation (`layout.summary_key`), so the monitor reads a few kilobytes per hour instead of
its rows. An hour offloaded before summaries existed (or whose summary is unreadable) is summarized
from its files the first time it is read, and that summary is written beside its manifest: each
hour is summarized once. A window holds the merge of its hours' summaries.

    summary = window_summary(lake, contract, valid_hours(lake, "telemetry", start, end))
"""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from ml.contract import Contract, model_frame
from ml.drift.summary import Summary
from ml.lake import Lake
from ml.lake.layout import summary_key
from ml.lake.window import Window

log = logging.getLogger(__name__)
BATCH_ROWS = 65_536


def summarize_parquet(contract: Contract, sources: list[str | Path | io.BytesIO]) -> Summary:
    """The summary of Parquet files of raw telemetry, read a batch of rows at a time (memory stays flat)."""
    summary = Summary.empty(contract)
    for source in sources:
        for batch in pq.ParquetFile(source).iter_batches(batch_size=BATCH_ROWS, columns=contract.raw_columns):
            summary.add(model_frame(contract, batch.to_pandas()))
    return summary


def encode(summary: Summary) -> bytes:
    return json.dumps(summary.to_dict(), sort_keys=True).encode()


def hour_key(manifest: dict, topic_kind: str = "telemetry") -> str:
    """Where the summary of the hour a manifest publishes lives."""
    window = Window.hour(datetime.fromisoformat(manifest["window"]["start"]))
    generation = manifest.get("generation") or manifest["content_sha256"][:16]
    return summary_key(topic_kind, window, generation)


def hour_summary(lake: Lake, contract: Contract, manifest: dict, topic_kind: str = "telemetry") -> Summary:
    """The summary of a published hour: the stored one, or one made from its files now and stored."""
    key = hour_key(manifest, topic_kind)
    try:
        return Summary.from_dict(json.loads(lake.read_bytes(key)))
    except FileNotFoundError:
        log.info("summarizing %s from its files (offloaded without a drift summary)", manifest["window"]["start"])
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("%s is unreadable (%r): summarizing its hour again", lake.url(key), exc)
    summary = summarize_parquet(contract, [io.BytesIO(lake.read_bytes(f["key"])) for f in manifest.get("files", [])])
    if summary.rows != manifest.get("rows", summary.rows):
        raise ValueError(f"{manifest['window']['start']}: its files hold {summary.rows} rows, its manifest says "
                         f"{manifest.get('rows')}; offload the hour again (continuum-offload --hour)")
    lake.write_bytes(key, encode(summary))
    return summary


def window_summary(lake: Lake, contract: Contract, manifests: list[dict]) -> Summary | None:
    """The merged summary of the hours the manifests publish (None without hours)."""
    if not manifests:
        return None
    return Summary.merged([hour_summary(lake, contract, m) for m in manifests])


def window_sample(lake: Lake, contract: Contract, manifests: list[dict], rows: int, seed: int) -> pd.DataFrame:
    """About `rows` raw rows of the hours, each hour giving its share of them (drawn with a fixed seed),
    read one hour at a time: what the drift report is drawn on."""
    total = sum(int(m.get("rows", 0)) for m in manifests)
    frames = []
    for i, manifest in enumerate(manifests):
        files = [io.BytesIO(lake.read_bytes(f["key"])) for f in manifest.get("files", [])]
        if not files:
            continue
        hour = pd.concat([pq.read_table(f, columns=contract.raw_columns).to_pandas() for f in files], ignore_index=True)
        take = min(len(hour), max(1, round(rows * len(hour) / max(total, 1))))
        frames.append(hour if take >= len(hour) else hour.sample(n=take, random_state=seed + i))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
