"""The Great Expectations suite of a contract, built as plain data and kept as JSON in `expectations/`.

The suite is derived from the contract, never written by hand, so it cannot drift from it: the
columns and Arrow types the offload writes, ranges and allowed values, null rates, unique event ids,
event times inside the hour give or take the offload's lateness (filled in at run time through the
`window_start`/`window_end` parameters) and the hour's volume. Each expectation carries GE's own `severity`:

- critical: the hour is unusable (schema, types, null or duplicate ids, times outside the window,
  values outside the contract, an empty hour). The offload already quarantines rows that break the
  contract, repeat an event id or carry an event time outside the window, so any of these failing in
  the lake means something bypassed or broke the offload.
- warning: the hour is usable but odd (a nullable sensor dropping more readings than the contract
  allows, a volume outside the expected band). It is recorded, and the hour stays valid.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from ml.contract import CONTRACTS_DIR, Contract
from ml.contract.model import CATEGORICAL
from ml.contract.codec import codec_for

CRITICAL, WARNING = "critical", "warning"
WINDOW_START, WINDOW_END = "window_start", "window_end"
EXPECTATIONS_DIR = Path(__file__).resolve().parents[2] / "expectations"
GENERATE = "continuum-expectations --contract {name}"


class SuiteError(ValueError):
    """A suite is missing, stale or not usable; the message says which file and how to regenerate it."""


def build_suite(contract: Contract, volume_band: tuple[int, int] | None = None) -> dict:
    """The expectation suite of the contract's telemetry hours, as JSON-able data (GE 1.x format).

    `volume_band` (min, max rows per hour) adds a warning when an hour's volume falls outside it; a
    band starting at 0 also allows an empty hour, which is otherwise a critical failure."""
    if volume_band is not None and not 0 <= volume_band[0] <= volume_band[1]:
        raise SuiteError(f"volume band must be 0 <= min <= max rows (got {volume_band})")
    schema = codec_for(contract, "telemetry").output_schema
    exps = [_exp("expect_table_columns_to_match_set", CRITICAL, "the offload writes exactly these columns",
                 column_set=schema.names, exact_match=True)]
    if volume_band is None or volume_band[0] > 0:
        exps.append(_exp("expect_table_row_count_to_be_between", CRITICAL, "an empty hour holds nothing to learn from",
                         min_value=1, max_value=None))
    if volume_band is not None:
        exps.append(_exp("expect_table_row_count_to_be_between", WARNING, "the hour's volume is within the expected band",
                         min_value=volume_band[0], max_value=volume_band[1]))
    for name in (contract.event_id, contract.entity_key, contract.event_time):
        exps.append(_exp("expect_column_values_to_not_be_null", CRITICAL, "identity fields are required", column=name))
    exps.append(_exp("expect_column_values_to_be_unique", CRITICAL, "one event is one row: a duplicate id would be "
                     "counted twice in drift and training", column=contract.event_id))
    exps.append(_exp("expect_compound_columns_to_be_unique", CRITICAL, "each Kafka record is written once",
                     column_list=["kafka_partition", "kafka_offset"]))
    exps.append(_exp("expect_column_values_to_be_between", CRITICAL, "an hour holds only events of its own window (give or take the allowed lateness)",
                     column=contract.event_time, min_value={"$PARAMETER": WINDOW_START},
                     max_value={"$PARAMETER": WINDOW_END}, strict_max=True))
    for feat in contract.features:
        exps += _feature_expectations(feat)
    for field in schema:
        exps.append(_exp("expect_column_values_to_be_of_type", CRITICAL, f"the Parquet column is {field.type}",
                         column=field.name, type_=_pandas_type(field.type)))
    band = None if volume_band is None else [int(volume_band[0]), int(volume_band[1])]
    return {
        "name": contract.name,
        "expectations": exps,
        "meta": {"contract": contract.name, "schema_hash": contract.schema_hash(), "volume_band": band,
                 "parameters": [WINDOW_START, WINDOW_END], "generated_by": generate_command(contract, volume_band)},
    }


def _feature_expectations(feat) -> list[dict]:
    out = []
    if feat.nullable and feat.max_null_rate < 1.0:
        out.append(_exp("expect_column_values_to_not_be_null", WARNING, f"at most {feat.max_null_rate:.0%} nulls "
                        "(contract max_null_rate)", column=feat.name, mostly=round(1.0 - feat.max_null_rate, 6)))
    elif not feat.nullable:
        out.append(_exp("expect_column_values_to_not_be_null", CRITICAL, "the contract does not allow nulls",
                        column=feat.name))
    if feat.kind == CATEGORICAL:
        out.append(_exp("expect_column_values_to_be_in_set", CRITICAL, "the contract's allowed values",
                        column=feat.name, value_set=list(feat.allowed)))
    elif feat.min is not None or feat.max is not None:
        out.append(_exp("expect_column_values_to_be_between", CRITICAL, "the contract's valid range",
                        column=feat.name, min_value=feat.min, max_value=feat.max))
    return out


def _exp(kind: str, severity: str, why: str, **kwargs) -> dict:
    return {"type": kind, "kwargs": kwargs, "severity": severity, "meta": {"why": why}}


def _pandas_type(typ: pa.DataType) -> str:
    """The name GE's pandas engine checks a column's dtype against (per value for object columns)."""
    if pa.types.is_timestamp(typ):
        if typ.tz is None:
            raise SuiteError(f"timestamp columns must be timezone-aware (got {typ})")
        return "Timestamp"  # the scalar type of a tz-aware datetime64 column; a naive one is datetime64
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return "str"
    return typ.to_pandas_dtype().__name__


def generate_command(contract: Contract, volume_band: tuple[int, int] | None = None) -> str:
    """The command that (re)generates a contract's suite: packaged contracts by name, others by path."""
    packaged = not contract.source or Path(contract.source).resolve().parent == CONTRACTS_DIR
    band = "" if volume_band is None else f" --min-rows {volume_band[0]} --max-rows {volume_band[1]}"
    return GENERATE.format(name=contract.name if packaged else contract.source) + band


def suite_path(name: str, expectations_dir: str | Path | None = None) -> Path:
    """Where the suite of contract `name` lives: `<expectations_dir>/<name>.json`."""
    return Path(expectations_dir or EXPECTATIONS_DIR) / f"{name}.json"


def load_suite(contract: Contract, expectations_dir: str | Path | None = None) -> dict:
    """Read the committed suite of a contract; refuse one that is missing or built for another contract
    version, naming the file and the command that regenerates it."""
    path = suite_path(contract.name, expectations_dir)
    if not path.is_file():
        raise SuiteError(f"no expectation suite {path} for contract {contract.name!r}; "
                         f"generate it with `{generate_command(contract)}`")
    suite = json.loads(path.read_text(encoding="utf-8"))
    meta = suite.get("meta") or {}
    if meta.get("schema_hash") != contract.schema_hash():
        raise SuiteError(f"expectation suite {path} was built for another version of contract {contract.name!r}; "
                         f"regenerate it with `{meta.get('generated_by') or generate_command(contract)}`")
    return suite


def write_suite(suite: dict, path: str | Path) -> Path:
    """Write a suite as stable, reviewable JSON (sorted keys, one expectation per block)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(suite, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
