"""Score a micro-batch: raw telemetry in, prediction, alert, shadow and dead-letter records out.

Decoding is the offload's (`ml.offload.decode`: one Arrow parse of the whole batch, the contract's
vectorized checks, record by record only for a batch that does not parse); features are the
contract's `model_frame`, the same code training ran. The model is called once per batch and model,
never once per event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import orjson
import pandas as pd

from ml.contract import Contract, model_frame
from ml.offload.decode import TopicCodec, decode
from ml.offload.window import RawBatch
from ml.serving.routing import ServingState

ALERT_COMMAND = "schedule_maintenance"
Record = tuple  # (key, value) or (key, value, headers)


@dataclass
class Scored:
    """The records one batch produces, ready for the producer."""

    predictions: list[Record] = field(default_factory=list)
    alerts: list[Record] = field(default_factory=list)
    shadow: list[Record] = field(default_factory=list)
    dlq: list[Record] = field(default_factory=list)
    latency_s: np.ndarray = field(default_factory=lambda: np.empty(0))


def iso_ms(ms: int) -> str:
    """An epoch-ms time as ISO-8601 UTC with milliseconds and Z, the format of every time we write."""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def predict_frame(contract: Contract, state: ServingState, frame: pd.DataFrame) -> tuple[np.ndarray, list, pd.DataFrame]:
    """(score per row, serving model per row, model features) of decoded, valid events: routing, the
    contract's features, one model call per serving model."""
    features = model_frame(contract, frame)
    devices = frame[contract.entity_key].tolist()
    scores = np.empty(len(frame), dtype=np.float64)
    models: list = [state.champion] * len(frame)
    for model, rows in state.route(devices):
        if rows is None:
            scores[:] = model.predict(features)
            models = [model] * len(frame)
        elif len(rows):
            scores[rows] = model.predict(features.iloc[rows])
            for i in rows.tolist():
                models[i] = model
    return scores, models, features


def score_batch(contract: Contract, codec: TopicCodec, state: ServingState, raw: RawBatch,
                topic: str, now_ms: int) -> Scored:
    """Decode, score and encode one batch; bad records become dead letters with their reason."""
    valid, rejects = decode(codec, raw)
    out = Scored()
    for row in rejects.to_pylist():
        out.dlq.append((row["key"], row["value"], dead_letter_headers(row["reason"], topic, row["kafka_partition"],
                                                                      row["kafka_offset"])))
    if not valid.num_rows:
        return out
    frame = valid.to_pandas()
    scores, models, features = predict_frame(contract, state, frame)
    keep = np.ones(len(raw), dtype=bool)
    if rejects.num_rows:
        bad = set(zip(rejects["kafka_partition"].to_pylist(), rejects["kafka_offset"].to_pylist()))
        keep = np.array([(p, o) not in bad for p, o in zip(raw.partitions.tolist(), raw.offsets.tolist())])
    latency_ms = now_ms - raw.timestamps[keep].astype(np.float64)
    out.latency_s = latency_ms / 1000.0
    served_at = iso_ms(now_ms)
    ids, devices = frame[contract.event_id].tolist(), frame[contract.entity_key].tolist()
    id_name, key_name, dumps = contract.event_id, contract.entity_key, orjson.dumps
    for event_id, device, score, model, lat in zip(ids, devices, scores.tolist(), models, latency_ms.tolist()):
        alert = score >= model.threshold
        key = device.encode()
        out.predictions.append((key, dumps({
            id_name: event_id, key_name: device, "model_name": model.name, "model_version": model.version,
            "score": score, "decision": "alert" if alert else "normal", "served_at": served_at, "latency_ms": lat})))
        if alert:
            out.alerts.append((key, dumps({
                "type": "failure_risk", id_name: event_id, key_name: device, "score": score,
                "threshold": model.threshold, "command": ALERT_COMMAND, "model_name": model.name,
                "model_version": model.version, "at": served_at})))
    if state.shadow is not None:
        shadow = state.shadow
        shadow_scores = shadow.predict(features)
        for event_id, device, score, lat in zip(ids, devices, shadow_scores.tolist(), latency_ms.tolist()):
            out.shadow.append((device.encode(), dumps({
                id_name: event_id, key_name: device, "model_name": shadow.name, "model_version": shadow.version,
                "score": score, "decision": "alert" if score >= shadow.threshold else "normal",
                "served_at": served_at, "latency_ms": lat})))
    return out


def dead_letter_headers(reason: str, topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
    """Where a dead letter came from and why it was refused; its value stays the original bytes."""
    return [("error", reason.encode()), ("source_topic", topic.encode()),
            ("source_partition", str(partition).encode()), ("source_offset", str(offset).encode())]
