"""Score a micro-batch: raw telemetry in, prediction, alert, shadow and dead-letter records out.

Decoding applies the contract's rules (`ml.serving.batch`); features are the contract's `model_frame`,
the same code training ran. The model is called once per batch and model,
never once per event, and prediction records are encoded column-wise by Arrow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ml.contract import Contract, model_frame, model_matrix
from ml.contract.codec import TopicCodec
from ml.contract.decode import RawBatch
from ml.serving.batch import SMALL_BATCH, Decoded, bound_dead_letters, decode_batch
from ml.serving.routing import ServingState
from ml.serving.stream import Records
from ml.settings import ServingSettings

ALERT_COMMAND = "schedule_maintenance"
DLQ_MAX_BYTES = ServingSettings.dlq_max_bytes  # one value: the setting's default
NEEDS_ESCAPE = r'["\\\x00-\x1f]'  # characters a JSON string cannot hold verbatim


@dataclass
class Scored:
    """The records one batch produces, ready for the producer: predictions and shadow predictions with
    the scored event's own Kafka timestamp (as Kafka Streams propagates input timestamps), so the lake
    files a prediction under its event's hour even when history is replayed; alerts stamped when sent;
    dead letters as (key, value, headers), `dlq_truncated` of them cut to the dead-letter limit."""

    predictions: Records = field(default_factory=lambda: Records([], [], []))
    alerts: Records = field(default_factory=lambda: Records([], []))
    shadow: Records = field(default_factory=lambda: Records([], [], []))
    dlq: list = field(default_factory=list)
    dlq_truncated: int = 0
    latency_s: np.ndarray = field(default_factory=lambda: np.empty(0))


def iso_ms(ms: int) -> str:
    """An epoch-ms time as ISO-8601 UTC with milliseconds and Z, the format of every time we write."""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def predict(state: ServingState, features, devices: list[str]) -> tuple[np.ndarray, np.ndarray, list]:
    """(scores, index of each row's model in `models`, models) for a model frame or matrix."""
    routes = state.route(devices)
    models = [model for model, _ in routes]
    scores = np.empty(len(features), dtype=np.float64)
    index = np.zeros(len(features), dtype=np.int64)
    for i, (model, rows) in enumerate(routes):
        if rows is None:
            scores[:] = model.predict(features)
        elif len(rows):
            scores[rows] = model.predict(features[rows] if isinstance(features, np.ndarray) else features.iloc[rows])
            index[rows] = i
    return scores, index, models


def batch_features(contract: Contract, state: ServingState, batch: Decoded):
    """The batch's model input: when its models all take category codes, `model_matrix` straight from the
    decoded events (pandas costs milliseconds a batch); otherwise `model_frame`."""
    everyone = state.models + ([state.shadow] if state.shadow is not None else [])
    if all(model.as_codes for model in everyone):
        return model_matrix(contract, batch.rows if batch.rows is not None else batch.arrow)
    return model_frame(contract, batch.frame)


def score_batch(contract: Contract, codec: TopicCodec, state: ServingState, raw: RawBatch,
                topic: str, now_ms: int, dlq_max_bytes: int = DLQ_MAX_BYTES) -> Scored:
    """Decode, score and encode one batch; bad records become dead letters with their reason, each within
    `dlq_max_bytes` (`bound_dead_letter`)."""
    batch = decode_batch(contract, codec, raw, topic)
    dlq, truncated = bound_dead_letters(batch.dead, dlq_max_bytes)
    out = Scored(dlq=dlq, dlq_truncated=truncated)
    if not len(batch):
        return out
    keys = batch.devices.to_pylist()
    features = batch_features(contract, state, batch)
    scores, index, models = predict(state, features, keys if state.split else [])
    stamps = raw.timestamps[batch.keep]
    latency_ms = np.round(now_ms - stamps.astype(np.float64), 3)
    out.latency_s = latency_ms / 1000.0
    ids, devices, served_at = batch.ids, batch.devices, iso_ms(now_ms)
    thresholds = np.array([m.threshold for m in models])[index]
    alert = scores >= thresholds
    event_ms = stamps.tolist()
    out.predictions = Records(keys, encode_predictions(contract, ids, devices, scores, alert, index, models,
                                                       served_at, latency_ms, batch.plain), event_ms)
    hits = np.flatnonzero(alert)
    if len(hits):
        hit_keys = [keys[i] for i in hits.tolist()]
        out.alerts = Records(hit_keys, [orjson.dumps({
            "type": "failure_risk", contract.event_id: event_id, contract.entity_key: key, "score": score,
            "threshold": models[m].threshold, "command": ALERT_COMMAND, "model_name": models[m].name,
            "model_version": models[m].version, "at": served_at})
            for event_id, key, score, m in zip(ids.take(pa.array(hits)).to_pylist(), hit_keys, scores[hits].tolist(),
                                               index[hits].tolist())])
    if state.shadow is not None:
        shadow = state.shadow.predict(features)
        values = encode_predictions(contract, ids, devices, shadow, shadow >= state.shadow.threshold,
                                    np.zeros(len(shadow), dtype=np.int64), [state.shadow], served_at, latency_ms,
                                    batch.plain)
        out.shadow = Records(keys, values, event_ms)
    return out


def encode_predictions(contract: Contract, ids: pa.Array, devices: pa.Array, scores: np.ndarray, alert: np.ndarray,
                       index: np.ndarray, models: list, served_at: str, latency_ms: np.ndarray,
                       plain: bool = False) -> list[bytes]:
    """Prediction records as JSON, in `ml.contract.codec.prediction_schema` field order: column-wise by
    Arrow for a large batch; record by record for a small one (Arrow's fixed cost is a millisecond) or
    when an id needs escaping. `plain` says no id needs it (the batch's raw JSON held no backslash:
    a parser refuses a quote or a control character in a string unless it is escaped)."""
    if len(ids) < SMALL_BATCH or not plain and (pc.any(pc.match_substring_regex(ids, NEEDS_ESCAPE)).as_py() or
                                                pc.any(pc.match_substring_regex(devices, NEEDS_ESCAPE)).as_py()):
        return [orjson.dumps({contract.event_id: i, contract.entity_key: d, "model_name": models[m].name,
                              "model_version": models[m].version, "score": s, "decision": "alert" if a else "normal",
                              "served_at": served_at, "latency_ms": lat})
                for i, d, m, s, a, lat in zip(ids.to_pylist(), devices.to_pylist(), index.tolist(), scores.tolist(),
                                              alert.tolist(), latency_ms.tolist())]
    # constant text is joined into as few pieces as possible: each piece is one more pass over the batch
    model = pa.array(['","model_name":' + orjson.dumps(m.name).decode() + ',"model_version":' +
                      orjson.dumps(m.version).decode() + ',"score":' for m in models])
    model = model.take(pa.array(index)) if len(models) > 1 else model[0]
    tail = f'","served_at":"{served_at}","latency_ms":'
    decision = pc.if_else(pa.array(alert), ',"decision":"alert' + tail, ',"decision":"normal' + tail)
    text = pc.binary_join_element_wise(
        f'{{"{contract.event_id}":"', ids, f'","{contract.entity_key}":"', devices, model,
        pc.cast(pa.array(scores), pa.string()), decision, pc.cast(pa.array(latency_ms), pa.string()), "}", "")
    return text.cast(pa.binary()).to_pylist()
