"""A recorded file's rows as simulator-shaped events: times, stable ids, entities, feature codes, labels.

The columns take the simulator's own shapes (`ml.simulate.encode.EventChunk`: numeric float64,
categorical codes into a vocabulary), so the simulator's encoder writes the wire format. A value the
encoder cannot carry as it is (text in a numeric column, an infinity, a time that does not parse, a
label other than 0/1) is kept, with its row, in `overrides`: the encoded record gets the file's value
back, and the contract rejects it downstream with its reason instead of the row vanishing here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ml.contract import Contract
from ml.contract.records import event_time_utc
from ml.replay.options import ReplayError, ReplayOptions
from ml.replay.read import Columns

MS_PER_HOUR = 3_600_000


@dataclass
class Events:
    """One array entry per file row, in file order (row i of the file is entry i)."""

    ts_ms: np.ndarray  # int64: event time; a row without a readable time takes its predecessor's
    event_id: np.ndarray  # S16: 16 hex digits, a hash of the row's number and values
    device: np.ndarray  # index into fleet_ids
    columns: dict[str, np.ndarray]
    label: np.ndarray  # int8, 0 where the file's label is unusable (see label_overrides)
    fleet_ids: tuple[str, ...]
    vocab: dict[str, tuple[str, ...]]
    overrides: dict[int, dict[str, Any]] = field(default_factory=dict)  # row -> {field: file value}
    label_overrides: dict[int, Any] = field(default_factory=dict)  # row -> file's label value


def build_events(contract: Contract, raw: pd.DataFrame, cols: Columns, options: ReplayOptions,
                 default_entity: str) -> Events:
    """The file's rows as events; `options` must be checked (`ReplayOptions.checked`)."""
    n = len(raw)
    overrides: dict[int, dict[str, Any]] = {}
    hashes = pd.util.hash_pandas_object(raw, index=True).to_numpy(dtype=np.uint64)
    event_id = np.array([f"{h:016x}" for h in hashes.tolist()], dtype="S16")
    ts_ms = _times(contract, raw, cols, options, overrides)
    if cols.entity is None:
        fleet_ids, device = (options.entity or default_entity,), np.zeros(n, dtype=np.int64)
    else:
        entity = raw[cols.entity]
        text = entity.map(lambda v: "" if _null(v) else str(v)).to_numpy(dtype=object)
        fleet, device = np.unique(text.astype(str), return_inverse=True)
        fleet_ids = tuple(fleet.tolist())
    columns: dict[str, np.ndarray] = {}
    vocab: dict[str, tuple[str, ...]] = {}
    for feat in contract.features:
        col = raw[cols.features[feat.name]]
        if feat.kind == "numeric":
            columns[feat.name] = _numbers(feat.name, col, overrides)
        else:
            columns[feat.name], vocab[feat.name] = _codes(feat.name, col, feat.allowed, overrides)
    for name, source in cols.passthrough.items():
        col = raw[source] if source else pd.Series(None, index=raw.index, dtype=object)
        columns[name], vocab[name] = _codes(name, col, (), overrides)
    label, label_overrides = _labels(raw[cols.label])
    return Events(ts_ms, event_id, device, columns, label, fleet_ids, vocab, overrides, label_overrides)


def _times(contract: Contract, raw: pd.DataFrame, cols: Columns, options: ReplayOptions,
           overrides: dict[int, dict[str, Any]]) -> np.ndarray:
    if options.rows_per_hour is not None:
        start_ms = int(pd.Timestamp(options.start).value // 1_000_000)
        return start_ms + (np.arange(len(raw), dtype=np.int64) * MS_PER_HOUR) // options.rows_per_hour
    col = raw[cols.time]
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        parsed = col.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(col):
        parsed = col.dt.tz_localize("UTC")
    else:
        # value by value, by the rule the sidecar reads a time with (no zone: UTC); pandas, given
        # mixed offsets, reads a time without one in the offset of the time before it
        parsed = pd.to_datetime(col.map(event_time_utc), utc=True)
    bad = parsed.isna().to_numpy()
    if bad.all() and len(raw):
        raise ReplayError(f"time_column: no value of column {cols.time!r} reads as an ISO-8601 time "
                          f"(first: {col.iloc[0]!r}); point time_column at the event-time column")
    ms = parsed.astype("datetime64[ms, UTC]").astype("int64").to_numpy(copy=True)
    if bad.any():
        # an unreadable time still has to travel in some hour: its predecessor's (or, first, its successor's)
        filled = pd.Series(np.where(bad, np.nan, ms.astype(float))).ffill().bfill()
        ms = filled.to_numpy().astype(np.int64)
        for row in np.flatnonzero(bad).tolist():
            overrides.setdefault(row, {})[contract.event_time] = _plain(col.iloc[row])
    return ms


def _numbers(name: str, col: pd.Series, overrides: dict[int, dict[str, Any]]) -> np.ndarray:
    out = np.full(len(col), np.nan) if pd.api.types.is_bool_dtype(col) else _floats(col)
    unusable = col.notna().to_numpy() & ~np.isfinite(out)
    for row in np.flatnonzero(unusable).tolist():
        value = _plain(col.iloc[row])
        # JSON has no infinity: it travels as text, which the contract reports as not a number
        overrides.setdefault(row, {})[name] = str(value) if isinstance(value, float) else value
    out[unusable] = np.nan
    return out


def _floats(col: pd.Series) -> np.ndarray:
    """Numbers as float64, NaN where a value is not one. Text is read by Python's correctly rounded
    parser: pandas' faster one can be a unit in the last place off, and the model would see that."""
    coerced = pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    if pd.api.types.is_numeric_dtype(col):
        return coerced
    usable = ~np.isnan(coerced)
    try:
        coerced[usable] = col[usable].astype("float64").to_numpy()
    except (TypeError, ValueError):  # a value pandas reads and Python does not: keep pandas' reading
        pass
    return coerced


def _codes(name: str, col: pd.Series, allowed: tuple[str, ...] | None,
           overrides: dict[int, dict[str, Any]]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Codes into a vocabulary of the allowed values, then any other text the file holds (which the
    contract will reject by name); -1 for null. A value that is not text is kept as an override."""
    is_text = col.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    texts = col[is_text].astype(str)
    extra = sorted(set(texts.unique()) - set(allowed or ()))
    vocab = tuple(allowed or ()) + tuple(extra)
    index = {v: i for i, v in enumerate(vocab)}
    codes = np.full(len(col), -1, dtype=np.int16)
    codes[is_text] = texts.map(index).to_numpy(dtype=np.int16)
    for row in np.flatnonzero(~is_text & col.notna().to_numpy()).tolist():
        overrides.setdefault(row, {})[name] = _plain(col.iloc[row])
    return codes, vocab


def _labels(col: pd.Series) -> tuple[np.ndarray, dict[int, Any]]:
    values = col.to_numpy(dtype="float64") if pd.api.types.is_bool_dtype(col) else _floats(col)
    good = (values == 0) | (values == 1)
    label = np.where(good, values, 0).astype(np.int8)
    overrides = {}
    for row in np.flatnonzero(~good).tolist():
        value = _plain(col.iloc[row])
        number = float(values[row])
        if _null(value):
            overrides[row] = None
        elif math.isfinite(number):
            overrides[row] = int(number) if number.is_integer() else number
        else:
            overrides[row] = str(value)
    return label, overrides


def _null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT or value is pd.NA


def _plain(value: Any) -> Any:
    """A file value as plain JSON-able Python: numpy scalars unwrapped, null as None, times as ISO text."""
    if _null(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value if isinstance(value, (str, int, float, bool)) else str(value)
