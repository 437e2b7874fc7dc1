"""Validating offloaded hours in the real lake (a local folder and the S3 endpoint).

Hours are written with the offload's own `HourWriter`, so the files and the manifest are laid out
exactly as `lake_offload` leaves them; then they are validated and their manifests read back.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml.contract import load_contract
from ml.contract.codec import codec_for
from ml.lake.layout import manifest_hash
from ml.lake.window import Window
from ml.offload.writer import HourWriter
from ml.simulate.stream import SimConfig, Simulator
from ml.validation import build_suite, is_valid, valid_hours, validate_hour

CONTRACT = load_contract("machine_telemetry")
SUITE = build_suite(CONTRACT, volume_band=(100, 100_000))
SCHEMA = codec_for(CONTRACT, "telemetry").output_schema


def hour_frame(window: Window, seed: int = 1) -> pd.DataFrame:
    df = Simulator(CONTRACT, SimConfig(devices=20, rate=1.0, seed=seed)).frame(window.start_ms, window.end_ms, with_label=False)
    df["kafka_partition"] = (np.arange(len(df)) % 2).astype("int32")
    df["kafka_offset"] = np.arange(len(df), dtype="int64") // 2
    return df


def write_hour(lake, window: Window, df: pd.DataFrame, schema: pa.Schema = SCHEMA) -> dict:
    """Publish an hour the way the offload does: Parquet per partition, then `_manifest.json`."""
    writer = HourWriter(lake, "telemetry", window, schema)
    table = pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False)
    writer.add(table, pa.table({}), df["ts"].astype("int64").to_numpy())
    return writer.publish({"topic": "telemetry", "contract": CONTRACT.name,
                           "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
                           "status": "offloaded", "validation": None})


def manifest(lake, window: Window) -> dict:
    return json.loads(lake.read_text(f"raw/telemetry/{window.partition_path}/_manifest.json"))


def test_a_good_hour_is_valid_with_its_result_and_docs_in_the_lake(lake):
    window = Window.hour("2026-11-20T10")
    written = write_hour(lake, window, hour_frame(window))
    outcome = validate_hour(lake, CONTRACT, "telemetry", window, SUITE)
    assert (outcome.status, outcome.success, outcome.critical_failures, outcome.warnings) == ("valid", True, [], [])
    assert outcome.rows == written["rows"] == 3600
    prefix = "validation/telemetry/dt=2026-11-20/hour=10"
    assert outcome.result_key == f"{prefix}/result.json"
    result = json.loads(lake.read_text(outcome.result_key))
    assert result["success"] and len(result["results"]) == len(SUITE["expectations"])
    assert outcome.docs_key.startswith(f"{prefix}/docs/validations/machine_telemetry/") and outcome.docs_key.endswith(".html")
    assert "values must be unique" in lake.read_text(outcome.docs_key)
    assert lake.exists(f"{prefix}/docs/index.html")
    after = manifest(lake, window)
    assert after["status"] == "valid" and is_valid(after)
    assert after["validation"]["result_key"] == outcome.result_key and after["validation"]["suite"] == "machine_telemetry"
    assert after["content_sha256"] == written["content_sha256"] == manifest_hash(after), "validation changed the content hash"


def test_a_bad_hour_is_invalid_with_the_failing_expectations_named(lake):
    window = Window.hour("2026-11-20T11")
    df = hour_frame(window)
    df.loc[5, "event_id"] = df.loc[4, "event_id"]
    df.loc[6, "ts"] = window.end + timedelta(minutes=3)
    df["torque_nm"] = df["torque_nm"].map(lambda v: f"{v:.1f}")  # a wrong column type
    schema = SCHEMA.set(SCHEMA.get_field_index("torque_nm"), pa.field("torque_nm", pa.string()))
    write_hour(lake, window, df, schema)
    outcome = validate_hour(lake, CONTRACT, "telemetry", window, SUITE)
    assert outcome.status == "invalid" and not outcome.success
    named = {line.split(":")[0] for line in outcome.critical_failures}
    assert {"expect_column_values_to_be_unique(event_id)", "expect_column_values_to_be_between(ts)",
            "expect_column_values_to_be_of_type(torque_nm)"} <= named
    after = manifest(lake, window)
    assert after["status"] == "invalid" and not is_valid(after)
    assert after["validation"]["critical_failures"] == outcome.critical_failures
    assert not json.loads(lake.read_text(outcome.result_key))["success"]

    again = validate_hour(lake, CONTRACT, "telemetry", window, SUITE)
    assert (again.status, again.critical_failures, again.warnings) == (outcome.status, outcome.critical_failures, outcome.warnings)
    pages = [k for k in lake.list(f"validation/telemetry/{window.partition_path}/docs/validations") if k.endswith(".html")]
    assert pages == [again.docs_key], "a rerun replaces the hour's docs"


def test_warnings_are_recorded_and_the_hour_stays_valid(lake):
    window = Window.hour("2026-11-20T12")
    df = hour_frame(window)
    df.loc[df.index % 10 == 0, "vibration_mm_s"] = np.nan  # 10% nulls; the contract allows 2%
    write_hour(lake, window, df)
    outcome = validate_hour(lake, CONTRACT, "telemetry", window, SUITE)
    assert outcome.status == "valid" and not outcome.success and not outcome.critical_failures
    assert len(outcome.warnings) == 1 and outcome.warnings[0].startswith("expect_column_values_to_not_be_null(vibration_mm_s)")
    after = manifest(lake, window)
    assert is_valid(after) and after["validation"]["warnings"] == outcome.warnings


def test_files_that_disagree_with_the_manifest_make_the_hour_invalid(lake):
    window = Window.hour("2026-11-20T13")
    written = write_hour(lake, window, hour_frame(window))
    part = written["files"][0]["key"]
    table = pq.read_table(io.BytesIO(lake.read_bytes(part)))
    out = io.BytesIO()
    pq.write_table(table.slice(1), out)  # one row gone, the manifest still counts it
    lake.write_bytes(part, out.getvalue())
    outcome = validate_hour(lake, CONTRACT, "telemetry", window, SUITE)
    assert outcome.status == "invalid"
    assert f"manifest: {part} does not match its sha256" in outcome.critical_failures
    assert "manifest: says 3600 rows, its files hold 3599" in outcome.critical_failures


def test_valid_hours_leave_out_invalid_and_unvalidated_hours(lake):
    hours = [Window.hour(f"2026-11-21T{h:02d}") for h in range(4)]
    for i, window in enumerate(hours):
        df = hour_frame(window, seed=i)
        if i == 1:
            df.loc[1, "event_id"] = df.loc[0, "event_id"]
        write_hour(lake, window, df)
    for window in hours[:3]:
        validate_hour(lake, CONTRACT, "telemetry", window, SUITE)  # hours[3] is offloaded, not validated
    found = valid_hours(lake, "telemetry", hours[0].start, hours[3].end + timedelta(hours=2))
    assert [m["window"]["start"] for m in found] == [hours[0].start.isoformat(), hours[2].start.isoformat()]
    later = valid_hours(lake, "telemetry", hours[0].start + timedelta(minutes=1), hours[3].end)
    assert [m["window"]["start"] for m in later] == [hours[2].start.isoformat()], "an hour starting before `start` is out"
