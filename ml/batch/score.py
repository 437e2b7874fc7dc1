"""Score one UTC day of validated telemetry with a registered version, as the sidecar would have.

The version is loaded, verified and checked exactly as the sidecar loads it (`load_version`, `check_model`), and
every hour is scored with `ServingModel.predict(model_frame(contract, df))`, the sidecar's feature code
and model call. The day's rows go to one Parquet file per version and day (`layout.batch_predictions_key`),
sorted by event time and event id and free of anything about the run itself, so scoring a day again
rewrites the same bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ml.contract import Contract, model_frame
from ml.lake import Lake
from ml.lake.layout import batch_predictions_key
from ml.lake.window import Window
from ml.serving.model import ServingModel, check_model, load_version
from ml.validation import read_hour, valid_hours

ALERT, NORMAL = "alert", "normal"  # the sidecar's decisions, for the same score and threshold


class BatchError(ValueError):
    """A day cannot be scored, or the model asked for does not exist; the message names it and the fix."""


@dataclass
class DayScores:
    """One day scored by one version: the rows written, where, and the hours they came from."""

    day: date
    model: ServingModel
    key: str
    table: pa.Table
    hours: list[str] = field(default_factory=list)  # ISO start of every hour scored
    skipped: list[str] = field(default_factory=list)  # hours whose files disagree with their manifest


def day_window(day: date) -> Window:
    start = datetime.combine(day, time(), tzinfo=timezone.utc)
    return Window(start, start + timedelta(days=1))


def resolve_version(client, name: str, ref: str, lake: Lake) -> str:
    """The version a reference names: a version number as it is, an alias (challenger, ...) as it points
    now; `champion` only when the audit trail in `lake` records the move that put it there, as the
    sidecar asks (`ml.registry.UnrecordedMove` otherwise: the alias was moved around promotion)."""
    from mlflow.exceptions import MlflowException

    from ml.registry import CHAMPION, by_alias, recorded_move

    ref = str(ref).strip()
    if ref.isdigit():
        try:
            return str(client.get_model_version(name, ref).version)
        except MlflowException as exc:
            if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise
            raise BatchError(f"model {name!r} has no version {ref}; give a registered version or an alias") from None
    found = by_alias(client, name, ref)
    if found is None:
        raise BatchError(f"model {name!r} has no alias {ref!r} (none promoted yet, or a typo); give a version "
                         "number or an existing alias such as champion, challenger or previous")
    if ref == CHAMPION:
        recorded_move(lake, name, found.version)
    return str(found.version)


def load_model(tracking_uri: str, contract: Contract, name: str, version: str, lake: Lake) -> ServingModel:
    """The version as the sidecar would serve it; ModelRefused if its verdict in `lake` does not let it
    serve these bytes, or if it cannot score this contract."""
    return check_model(load_version(tracking_uri, name, version, lake), contract)


def batch_schema(contract: Contract) -> pa.Schema:
    """One scored event: its id, device and event time, the score and decision, and the version."""
    source = contract.arrow_schema()
    return pa.schema([
        source.field(contract.event_id), source.field(contract.entity_key), source.field(contract.event_time),
        pa.field("score", pa.float64(), nullable=False), pa.field("decision", pa.string(), nullable=False),
        pa.field("model_name", pa.string(), nullable=False), pa.field("model_version", pa.string(), nullable=False),
    ], metadata={"contract": contract.name, "schema_hash": contract.schema_hash()})


def score_day(lake: Lake, contract: Contract, model: ServingModel, day: date) -> DayScores:
    """Score the valid telemetry hours of `day` and write them; BatchError if the day has none."""
    window = day_window(day)
    manifests = valid_hours(lake, "telemetry", window.start, window.end)
    if not manifests:
        raise BatchError(
            f"no valid telemetry hours for {day:%Y-%m-%d} in the lake {lake.uri}: run lake_offload for that day "
            f"first (airflow backfill create --dag-id lake_offload --from-date {day:%Y-%m-%d}T00:00:00 "
            f"--to-date {day:%Y-%m-%d}T23:00:00), then score it again")
    parts, hours, skipped = [], [], []
    for manifest in manifests:
        df, problems = read_hour(lake, contract, "telemetry", manifest)
        hour = manifest["window"]["start"]
        if problems:
            skipped.append(f"{hour}: {'; '.join(problems)}")
            continue
        parts.append(_scored(contract, model, df))
        hours.append(hour)
    if not parts:
        raise BatchError(f"every valid telemetry hour of {day:%Y-%m-%d} disagrees with its manifest; offload "
                         "those hours again (lake_offload):\n" + "\n".join(skipped))
    table = pa.concat_tables(parts).sort_by([(contract.event_time, "ascending"), (contract.event_id, "ascending")])
    out = DayScores(day, model, batch_predictions_key(model.version, day), table, hours, skipped)
    lake.write_bytes(out.key, parquet_bytes(table))
    return out


def _scored(contract: Contract, model: ServingModel, df) -> pa.Table:
    scores = model.predict(model_frame(contract, df))
    n = len(scores)
    source = pa.Table.from_pandas(df[[contract.event_id, contract.entity_key, contract.event_time]],
                                  preserve_index=False)
    schema = batch_schema(contract)
    columns = [source.column(i).cast(schema.field(i).type) for i in range(3)] + [
        pa.array(scores, pa.float64()), pa.array(np.where(scores >= model.threshold, ALERT, NORMAL)),
        pa.array([model.name] * n, pa.string()), pa.array([model.version] * n, pa.string())]
    return pa.Table.from_arrays(columns, schema=schema)


def parquet_bytes(table: pa.Table) -> bytes:
    """The table as zstd Parquet; equal tables give equal bytes (no pandas or run metadata)."""
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()
