"""Data that lies or breaks: a machine's frozen or silent sensors, and broken messages on the topic.

A sensor fault changes what one machine reports, not what happens to it, so its outcomes stay true.
Bad records are extra messages, copies of real events broken in one of five ways, that the
dead-letter queue and the quarantine must catch; the good stream is the same with or without them.
"""

from __future__ import annotations

import numpy as np
import orjson

from ml.contract import Contract
from ml.simulate.encode import EventChunk
from ml.simulate.scenarios import BadRecords, SensorFault

_HEX = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")


def random_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """n random 64-bit ids as 16 hex digits (S16)."""
    raw = rng.integers(0, 2**63, size=n, dtype=np.int64).astype(">u8")
    return _HEX[raw.view(np.uint8)].reshape(n, 8).view("S16").ravel() if n else np.empty(0, "S16")


def apply_sensor_faults(chunk: EventChunk, faults: list[tuple[SensorFault, int, dict[str, float]]]) -> None:
    """Overwrite, in place, the readings of each faulty machine while its fault is active.

    `faults` holds (fault, device index, stuck value per field); a `null` fault ignores the values."""
    for fault, device, stuck in faults:
        rows = (chunk.device == device) & fault.active(chunk.ts_ms)
        if rows.any():
            for name, value in stuck.items():
                chunk.columns[name][rows] = np.nan if fault.mode == "null" else value


def bad_records(
    contract: Contract, scenario: BadRecords, chunk: EventChunk, values: list[bytes], keys: list[bytes],
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[bytes | None], list[bytes], list[str]]:
    """Broken copies of about `rate` of the active events: (timestamps, keys, values, kinds)."""
    active = np.flatnonzero(scenario.active(chunk.ts_ms))
    n = int(rng.binomial(len(active), scenario.rate)) if len(active) else 0
    rows = np.sort(rng.choice(active, size=n)) if n else np.empty(0, np.int64)
    kinds = [scenario.kinds[i] for i in rng.integers(0, len(scenario.kinds), size=n)]
    ids = random_ids(rng, n).astype(str)
    draws = rng.random((n, 3))
    out_keys: list[bytes | None] = []
    out_values: list[bytes] = []
    for i, (row, kind) in enumerate(zip(rows.tolist(), kinds)):
        event = orjson.loads(values[row])
        event[contract.event_id] = ids[i]
        value = _break(contract, event, kind, draws[i])
        out_values.append(value)
        out_keys.append(keys[row] if contract.entity_key in event or kind == "malformed" else None)
    return chunk.ts_ms[rows], out_keys, out_values, kinds


def _break(contract: Contract, event: dict, kind: str, u: np.ndarray) -> bytes:
    """Break one decoded event in the given way and encode it again; u holds three uniform draws."""

    def pick(seq):
        return seq[int(u[0] * len(seq))]

    if kind == "malformed":
        raw = orjson.dumps(event)
        return raw[: 1 + int(u[1] * (len(raw) - 2))]  # a prefix of an object never closes it
    if kind == "missing":
        required = [contract.event_id, contract.entity_key, contract.event_time]
        required += [f.name for f in contract.features if not f.nullable]
        del event[pick(required)]
    elif kind == "wrong_type":
        feat = pick(contract.features)
        event[feat.name] = 42 if feat.kind == "categorical" else str(event[feat.name])
    elif kind == "out_of_range":
        bounded = [f for f in contract.numeric_features if f.min is not None or f.max is not None]
        if not bounded:
            target = contract.categorical_features[0].name if contract.categorical_features else contract.event_time
            event[target] = "not-an-allowed-value"
        else:
            feat = pick(bounded)
            span = (feat.max - feat.min) if feat.min is not None and feat.max is not None else 100.0
            high = feat.max is not None and (feat.min is None or u[1] < 0.5)
            offset = round(float(span * (0.1 + u[2])), 1)
            event[feat.name] = feat.max + offset if high else feat.min - offset
    elif kind == "oversized":
        event["padding"] = "x" * contract.limits.max_event_bytes
    return orjson.dumps(event)
