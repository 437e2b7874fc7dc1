"""The codec of each logical topic: the Arrow schema its records parse into and the checks they must pass.

Telemetry follows the event contract; outcomes and predictions are the product's own records. The
serving sidecar writes prediction records by hand (`ml.serving.score.encode_predictions`) and must
keep to `prediction_schema`, which the offload, validation and live metrics read them with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from ml.contract.model import TIMESTAMP, Contract
from ml.contract.records import check_records, invalid_rows

KAFKA_COLUMNS = [pa.field("kafka_partition", pa.int32()), pa.field("kafka_offset", pa.int64())]
Check = Callable[[pd.DataFrame], tuple[pd.DataFrame, pd.DataFrame]]


@dataclass(frozen=True)
class TopicCodec:
    """How one topic's records are parsed and checked."""

    kind: str
    schema: pa.Schema  # parsed row, without Kafka columns
    check: Check  # decoded frame -> (valid, rejects with `reason`)
    max_bytes: int
    flag: Callable[[pa.Table], np.ndarray] | None = None  # the same rules on a typed Arrow table, in Arrow

    @property
    def output_schema(self) -> pa.Schema:
        return pa.schema(list(self.schema) + KAFKA_COLUMNS, metadata=self.schema.metadata)


def prediction_schema(contract: Contract) -> pa.Schema:
    """A scored event as the serving sidecar writes it to the predictions topic."""
    return pa.schema([
        pa.field(contract.event_id, pa.string(), nullable=False),
        pa.field(contract.entity_key, pa.string()),
        pa.field("model_name", pa.string()), pa.field("model_version", pa.string()),
        pa.field("score", pa.float64()), pa.field("decision", pa.string()),
        pa.field("served_at", TIMESTAMP), pa.field("latency_ms", pa.float64()),
    ], metadata={"contract": contract.name, "schema_hash": contract.schema_hash()})


def codec_for(contract: Contract, kind: str) -> TopicCodec:
    """The codec of a logical topic: telemetry, outcomes, predictions, or predictions_shadow (the shadow's
    predictions, in the predictions' shape)."""
    limit = contract.limits.max_event_bytes
    if kind == "telemetry":
        return TopicCodec(kind, contract.arrow_schema(), lambda df: check_records(contract, df), limit,
                          lambda table: invalid_rows(contract, table))
    if kind == "outcomes":
        return TopicCodec(kind, contract.label_arrow_schema(), lambda df: _check_required(df, contract.label_arrow_schema(), {contract.label.field: (0, 1)}), limit)
    if kind in ("predictions", "predictions_shadow"):
        schema = prediction_schema(contract)
        return TopicCodec(kind, schema, lambda df: _check_required(df, schema, {}, score=True), limit)
    raise ValueError(f"unknown topic kind {kind!r}; expected telemetry, outcomes, predictions or predictions_shadow")


def _check_required(df: pd.DataFrame, schema: pa.Schema, allowed: dict, score: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Vectorized checks for the product's own records (outcomes, predictions): required fields present
    and typed, label values allowed, scores in [0, 1]."""
    reasons = pd.Series("", index=df.index, dtype=object)
    for field in schema:
        col = df[field.name] if field.name in df.columns else pd.Series(None, index=df.index, dtype=object)
        if pa.types.is_timestamp(field.type):
            parsed = pd.to_datetime(col, utc=True, format="ISO8601", errors="coerce") if col.dtype == object else col
            bad = parsed.isna() & col.notna()
            reasons[bad] += f"{field.name} must be an ISO-8601 time; "
            df = df.assign(**{field.name: parsed})
        elif pa.types.is_integer(field.type) or pa.types.is_floating(field.type):
            num = pd.to_numeric(col, errors="coerce")
            bad = num.isna() & col.notna()
            reasons[bad] += f"{field.name} must be a number; "
            if field.name in allowed:
                lo, hi = allowed[field.name][0], allowed[field.name][-1]
                off = num.notna() & ~num.isin(allowed[field.name])
                reasons[off] += f"{field.name} must be one of {lo}..{hi}; "
            df = df.assign(**{field.name: num})
        else:
            if pd.api.types.infer_dtype(col, skipna=True) in ("string", "empty"):
                bad = pd.Series(False, index=df.index)
            else:
                bad = col.notna() & ~col.map(lambda v: isinstance(v, str)).astype(bool)
            reasons[bad] += f"{field.name} must be a string; "
        if not field.nullable:
            reasons[col.isna()] += f"{field.name} is missing; "
    if score and "score" in df.columns:
        reasons[(df["score"] < 0) | (df["score"] > 1)] += "score outside [0, 1]; "
    bad = reasons != ""
    rejects = df[bad].copy()
    rejects["reason"] = reasons[bad].str.rstrip("; ")
    return df[~bad], rejects
