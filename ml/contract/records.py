"""Check events against the contract: a whole decoded frame at once, or one raw message at a time.

`check_records` is the vectorized path (offload, batch validation): it splits rows into valid ones,
with contract types, and rejects, with a human-readable `reason`. `decode_event` is the per-message
path (the serving sidecar's small batches and dead-letter queue, and `check_event` under it the
sidecar's `POST /predict`) and applies the same rules with the same wording.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Callable

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from ml.contract.model import CATEGORICAL, Contract, ContractError, Feature

Reason = Callable[[np.ndarray], Any]  # positions of failing rows -> one text, or one text per row


def check_records(contract: Contract, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split decoded rows into (valid, rejects). Valid rows carry the contract's fields with their
    types first (event time as datetime64[ms, UTC]) and any other columns after; rejects are the
    rows as given plus a `reason` naming every broken field, e.g. `torque_nm=912.0 above max 100`."""
    n = len(df)
    problems: list[tuple[np.ndarray, Reason]] = []
    out: dict[str, Any] = {}
    for name in (contract.event_id, contract.entity_key):
        out[name] = _strings(df, name, problems, required=True, missing_empty=True)
    out[contract.event_time] = _times(df, contract.event_time, problems)
    for feat in contract.features:
        if feat.kind == CATEGORICAL:
            out[feat.name] = _categorical(df, feat, problems)
        else:
            out[feat.name] = _numeric(df, feat, problems)
    for name in contract.passthrough:
        out[name] = _strings(df, name, problems, required=False)
    bad = np.zeros(n, dtype=bool)
    for mask, _ in problems:
        bad |= mask
    valid = pd.DataFrame(out, index=df.index)
    extra = [c for c in df.columns if c not in out]
    valid = pd.concat([valid, df[extra]], axis=1) if extra else valid
    rejects = df[bad].copy()
    rejects["reason"] = _reasons(problems, np.flatnonzero(bad))
    return valid[~bad], rejects


def decode_event(contract: Contract, raw: bytes) -> dict:
    """Parse and check one raw message; return {field: value} with numerics as float (NaN for a null)
    and the event time as given. Raise ContractError saying why the message is unusable."""
    limit = contract.limits.max_event_bytes
    if len(raw) > limit:
        raise ContractError(f"oversized: {len(raw)} bytes > max_event_bytes {limit}")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ContractError(f"undecodable: {exc}") from None
    if not isinstance(obj, dict):
        raise ContractError(f"undecodable: expected a JSON object, got {type(obj).__name__}")
    return check_event(contract, obj)


def check_event(contract: Contract, obj: dict) -> dict:
    """Check one parsed event (a JSON object) as `decode_event` does; ContractError naming every broken field."""
    reasons: list[str] = []
    out: dict[str, Any] = {}
    for name in (contract.event_id, contract.entity_key):
        value = out[name] = obj.get(name)
        if value is None or value == "":
            reasons.append(f"{name} is missing")
        elif not isinstance(value, str):
            reasons.append(f"{name} must be a string (got {value!r})")
    value = out[contract.event_time] = obj.get(contract.event_time)
    if value is None:
        reasons.append(f"{contract.event_time} is missing")
    elif not _iso_time(value):
        reasons.append(f"{contract.event_time} must be an ISO-8601 time (got {value!r})")
    for feat in contract.features:
        out[feat.name], reason = _check_value(feat, obj.get(feat.name))
        if reason:
            reasons.append(reason)
    for name in contract.passthrough:
        value = out[name] = obj.get(name)
        if value is not None and not isinstance(value, str):
            reasons.append(f"{name} must be a string (got {value!r})")
    if reasons:
        raise ContractError("; ".join(reasons))
    return out


def _check_value(feat: Feature, value: Any) -> tuple[Any, str | None]:
    if value is None:
        return (math.nan if feat.kind != CATEGORICAL else None), (None if feat.nullable else f"{feat.name} is missing")
    if feat.kind == CATEGORICAL:
        if not isinstance(value, str):
            return value, f"{feat.name} must be a string (got {value!r})"
        if value not in feat.allowed:
            return value, f"{feat.name}={value!r} not in allowed [{', '.join(feat.allowed)}]"
        return value, None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value, f"{feat.name} must be a number (got {value!r})"
    value = float(value)
    return value, _range_text(feat, value)


def _range_text(feat: Feature, value: float) -> str | None:
    if feat.min is not None and value < feat.min:
        return f"{feat.name}={value!r} below min {feat.min:g}"
    if feat.max is not None and value > feat.max:
        return f"{feat.name}={value!r} above max {feat.max:g}"
    if math.isinf(value):
        return f"{feat.name}={value!r} is not finite"
    return None


def _iso_time(value: Any) -> bool:
    return event_time_utc(value) is not None


def event_time_utc(value: Any) -> datetime | None:
    """An ISO-8601 event time as an aware UTC datetime, or None when it is not one. A time without a
    zone is UTC, as the vectorized path (Arrow, pandas) reads it: never the host's local time, which
    would move events by the host's offset and fail on times near the ends of the calendar."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None


def _kind_mask(col: pd.Series, want: tuple[type, ...], inferred_ok: tuple[str, ...]) -> np.ndarray:
    """True where a non-null value has one of the wanted Python types; one C pass when the column is clean."""
    if pd.api.types.infer_dtype(col, skipna=True) in inferred_ok:
        return np.ones(len(col), dtype=bool)
    return col.map(lambda v: isinstance(v, want) and not isinstance(v, bool)).to_numpy(dtype=bool)


def _strings(df: pd.DataFrame, name: str, problems: list, required: bool, missing_empty: bool = False) -> pd.Series:
    if name not in df.columns:
        if required:
            problems.append((np.ones(len(df), dtype=bool), lambda pos: f"{name} is missing"))
        return pd.Series(None, index=df.index, dtype=object)
    col = df[name]
    null = col.isna().to_numpy() | ((col == "").to_numpy() if missing_empty else False)
    wrong = ~null & ~_kind_mask(col, (str,), ("string", "empty"))
    if required:
        problems.append((null, lambda pos: f"{name} is missing"))
    problems.append((wrong, lambda pos: [f"{name} must be a string (got {v!r})" for v in _at(col, pos)]))
    return col.astype(object)


def _times(df: pd.DataFrame, name: str, problems: list) -> pd.Series:
    if name not in df.columns:
        problems.append((np.ones(len(df), dtype=bool), lambda pos: f"{name} is missing"))
        return pd.Series(pd.NaT, index=df.index, dtype="datetime64[ms, UTC]")
    col = df[name]
    null = col.isna().to_numpy()
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        parsed = col.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(col):
        parsed = col.dt.tz_localize("UTC")
    else:
        is_str = _kind_mask(col, (str,), ("string", "empty"))
        parsed = pd.to_datetime(col.where(is_str), utc=True, format="ISO8601", errors="coerce")
    unparsed = ~null & parsed.isna().to_numpy()
    problems.append((null, lambda pos: f"{name} is missing"))
    problems.append((unparsed, lambda pos: [f"{name} must be an ISO-8601 time (got {v!r})" for v in _at(col, pos)]))
    return parsed.astype("datetime64[ms, UTC]")


def _categorical(df: pd.DataFrame, feat: Feature, problems: list) -> pd.Series:
    col = df[feat.name] if feat.name in df.columns else pd.Series(None, index=df.index, dtype=object)
    null = col.isna().to_numpy()
    is_str = _kind_mask(col, (str,), ("string", "empty"))
    unknown = ~null & is_str & ~col.isin(feat.allowed).to_numpy()
    if not feat.nullable:
        problems.append((null, lambda pos: f"{feat.name} is missing"))
    problems.append((~null & ~is_str, lambda pos: [f"{feat.name} must be a string (got {v!r})" for v in _at(col, pos)]))
    allowed = ", ".join(feat.allowed)
    problems.append((unknown, lambda pos: [f"{feat.name}={v!r} not in allowed [{allowed}]" for v in _at(col, pos)]))
    return col.astype(object)


def _numeric(df: pd.DataFrame, feat: Feature, problems: list) -> np.ndarray:
    col = df[feat.name] if feat.name in df.columns else pd.Series(np.nan, index=df.index)
    null = col.isna().to_numpy()
    if pd.api.types.is_bool_dtype(col):
        is_num = np.zeros(len(col), dtype=bool)
    elif pd.api.types.is_numeric_dtype(col):
        is_num = np.ones(len(col), dtype=bool)
    else:
        is_num = _kind_mask(col, (int, float), ("floating", "integer", "mixed-integer-float", "decimal", "empty"))
    wrong = ~null & ~is_num
    values = pd.to_numeric(col.where(is_num & ~null), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    if not feat.nullable:
        problems.append((null, lambda pos: f"{feat.name} is missing"))
    problems.append((wrong, lambda pos: [f"{feat.name} must be a number (got {v!r})" for v in _at(col, pos)]))
    with np.errstate(invalid="ignore"):
        off = np.isinf(values)
        if feat.min is not None:
            off |= values < feat.min
        if feat.max is not None:
            off |= values > feat.max
    problems.append((off, lambda pos: [_range_text(feat, v) for v in values[pos].tolist()]))
    return values


def _at(col: pd.Series, pos: np.ndarray) -> list:
    """Values at positions as plain Python objects, so reasons read 912.0, not np.float64(912.0)."""
    return col.iloc[pos].tolist()


def _reasons(problems: list[tuple[np.ndarray, Reason]], bad_pos: np.ndarray) -> np.ndarray:
    """One '; '-joined text per failing row, in the contract's field order."""
    texts = np.full(len(bad_pos), "", dtype=object)
    for mask, reason in problems:
        hit = mask[bad_pos]
        if not hit.any():
            continue
        text = reason(bad_pos[hit])
        text = np.full(hit.sum(), text, dtype=object) if isinstance(text, str) else np.asarray(text, dtype=object)
        current = texts[hit]
        texts[hit] = np.where(current == "", text, current + "; " + text)
    return texts


def invalid_rows(contract: Contract, table) -> np.ndarray:
    """Which rows of an Arrow table, already typed by `contract.arrow_schema()`, break the contract.

    The same rules as `check_records`, decided in Arrow without leaving C: the hot paths (offload,
    serving) flag rows here and ask `check_records` for the reasons of those few rows only. Each column
    is first checked whole with a few aggregates (null count, min and max, a finite sum); only a
    column that fails that check is compared row by row, so a clean batch costs a few calls per column.
    """
    import pyarrow.compute as pc

    def mask(values) -> np.ndarray:
        return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)

    def null(name: str) -> np.ndarray:
        return mask(pc.is_null(table.column(name), nan_is_null=True))

    bad = np.zeros(table.num_rows, dtype=bool)
    if not table.num_rows:
        return bad
    for name in (contract.event_id, contract.entity_key):
        col = table.column(name)
        empty = pc.equal(col, "")
        if col.null_count or pc.any(empty).as_py():
            bad |= null(name) | mask(empty)
    if table.column(contract.event_time).null_count:
        bad |= null(contract.event_time)
    for feat in contract.features:
        col = table.column(feat.name)
        if feat.kind == CATEGORICAL:
            if col.null_count and not feat.nullable:
                bad |= null(feat.name)
            known = pc.is_in(col, value_set=_value_set(feat.allowed))
            if not pc.all(known).as_py():
                bad |= ~null(feat.name) & ~mask(known)
            continue
        if _numbers_clean(col, feat):
            continue
        if not feat.nullable:
            bad |= null(feat.name)
        off = pc.is_inf(col)
        if feat.min is not None:
            off = pc.or_kleene(off, pc.less(col, feat.min))
        if feat.max is not None:
            off = pc.or_kleene(off, pc.greater(col, feat.max))
        bad |= mask(off)
    return bad


@lru_cache(maxsize=None)
def _value_set(allowed: tuple[str, ...]) -> pa.Array:
    """A categorical feature's allowed values as the Arrow array `is_in` takes, built once per contract."""
    return pa.array(allowed, pa.string())


def _numbers_clean(col, feat: Feature) -> bool:
    """True when a numeric column certainly passes its rules: no null where none is allowed, every value
    finite (a finite sum rules out NaN and infinity) and within the feature's range."""
    import pyarrow.compute as pc

    if col.null_count and not feat.nullable:
        return False
    total = pc.sum(col).as_py()
    if total is None:  # every value null (allowed here)
        return True
    if not math.isfinite(total):
        return False
    low, high = pc.min_max(col).values()
    return (feat.min is None or low.as_py() >= feat.min) and (feat.max is None or high.as_py() <= feat.max)
