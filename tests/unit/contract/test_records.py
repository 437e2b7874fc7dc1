"""Checking events against the contract, a frame at a time and a message at a time, with the same words."""

from __future__ import annotations

import math

import orjson
import pandas as pd
import pytest

from ml.contract import ContractError, check_records, decode_event, load_contract

CONTRACT = load_contract("machine_telemetry")
GOOD = {
    "event_id": "e1", "device_id": "dev-0001", "ts": "2026-11-22T13:00:00.123Z", "device_type": "M",
    "site": "plant-a", "air_temperature_k": 300.1, "process_temperature_k": 310.2, "rotational_speed_rpm": 1500.0,
    "torque_nm": 40.0, "tool_wear_min": 12.0, "vibration_mm_s": 1.2, "firmware": "1.4.2",
}

BAD = [
    ({"torque_nm": 912.0}, "torque_nm=912.0 above max 100"),
    ({"air_temperature_k": 12}, "air_temperature_k=12.0 below min 270"),
    ({"torque_nm": "40.0"}, "torque_nm must be a number (got '40.0')"),
    ({"torque_nm": True}, "torque_nm must be a number (got True)"),
    ({"torque_nm": None}, "torque_nm is missing"),
    ({"device_type": "X"}, "device_type='X' not in allowed [L, M, H]"),
    ({"site": 3}, "site must be a string (got 3)"),
    ({"event_id": None}, "event_id is missing"),
    ({"device_id": 7}, "device_id must be a string (got 7)"),
    ({"ts": "yesterday"}, "ts must be an ISO-8601 time (got 'yesterday')"),
    ({"firmware": 2}, "firmware must be a string (got 2)"),
    ({"torque_nm": 912.0, "site": "mars"}, "site='mars' not in allowed [plant-a, plant-b, plant-c, plant-d, plant-e]; torque_nm=912.0 above max 100"),
]


def event(**changes) -> dict:
    return {**GOOD, **changes}


def test_good_rows_pass_with_contract_types_and_extra_columns_kept():
    df = pd.DataFrame([event(), event(event_id="e2", vibration_mm_s=None)])
    df["kafka_offset"] = [5, 6]
    valid, rejects = check_records(CONTRACT, df)
    assert len(valid) == 2 and rejects.empty and "reason" in rejects.columns
    assert list(valid.columns) == CONTRACT.fields + ["kafka_offset"]
    assert str(valid["ts"].dtype) == "datetime64[ms, UTC]"
    assert valid["ts"][0] == pd.Timestamp("2026-11-22T13:00:00.123Z")
    assert math.isnan(valid["vibration_mm_s"][1])  # nullable: a null is fine


@pytest.mark.parametrize("changes, reason", BAD, ids=[r for _, r in BAD])
def test_bad_values_are_rejected_with_a_reason_that_names_the_field(changes, reason):
    df = pd.DataFrame([event(event_id="ok"), event(**changes)])
    valid, rejects = check_records(CONTRACT, df)
    assert valid[CONTRACT.event_id].tolist() == ["ok"]
    assert rejects["reason"].tolist() == [reason]
    assert rejects.index.tolist() == [1]


@pytest.mark.parametrize("changes, reason", BAD, ids=[r for _, r in BAD])
def test_decode_event_gives_the_same_reason_for_one_message(changes, reason):
    with pytest.raises(ContractError) as err:
        decode_event(CONTRACT, orjson.dumps(event(**changes)))
    assert str(err.value) == reason


def test_missing_fields_are_missing_whether_absent_or_null():
    bad = event()
    del bad["torque_nm"], bad["vibration_mm_s"]
    df = pd.DataFrame([bad])
    _, rejects = check_records(CONTRACT, df)
    assert rejects["reason"].tolist() == ["torque_nm is missing"]
    with pytest.raises(ContractError, match="^torque_nm is missing$"):
        decode_event(CONTRACT, orjson.dumps(bad))
    _, rejects = check_records(CONTRACT, df.drop(columns=["ts"]))
    assert rejects["reason"][0] == "ts is missing; torque_nm is missing"


def test_decode_event_rejects_oversized_and_undecodable_messages():
    assert decode_event(CONTRACT, orjson.dumps(GOOD))["torque_nm"] == 40.0
    assert math.isnan(decode_event(CONTRACT, orjson.dumps(event(vibration_mm_s=None)))["vibration_mm_s"])
    with pytest.raises(ContractError, match=r"^oversized: \d+ bytes > max_event_bytes 4096$"):
        decode_event(CONTRACT, orjson.dumps(event(padding="x" * 5000)))
    with pytest.raises(ContractError, match="^undecodable: "):
        decode_event(CONTRACT, orjson.dumps(GOOD)[:-3])
    with pytest.raises(ContractError, match="^undecodable: expected a JSON object, got list"):
        decode_event(CONTRACT, b"[1, 2]")



_NAIVE_TIMES = r'''
import json, sys, time
import numpy as np
from ml.contract import ContractError, decode_event, load_contract
from ml.contract.records import event_time_utc
from ml.contract.codec import codec_for
from ml.contract.decode import RawBatch, decode

contract = load_contract("machine_telemetry")
good = json.loads(sys.argv[1])
out = {"zone": time.strftime("%z", time.localtime(0))}
for ts in sys.argv[2:]:
    value = json.dumps(good | {"ts": ts}).encode()
    try:
        decode_event(contract, value)
        one = "ok"
    except ContractError as exc:
        one = str(exc)
    when = event_time_utc(ts)
    batch = RawBatch(np.zeros(1, np.int32), np.zeros(1, np.int64), np.zeros(1, np.int64), [b"k"], [value])
    valid, _ = decode(codec_for(contract, "telemetry"), batch)
    out[ts] = {"event": one, "event_utc": when and when.isoformat(),
               "batch_utc": valid.num_rows and valid.column("ts")[0].as_py().isoformat()}
print(json.dumps(out))
'''


def test_a_time_without_a_zone_is_utc_on_both_decode_paths_whatever_the_host_zone():
    """The per-event path (the sidecar's small batches) and the vectorized one (the offload, large
    batches) read a zone-less time as UTC on a host in New York, so they agree on every event."""
    import json
    import os
    import subprocess
    import sys

    times = ["2026-11-22T13:00:00", "2026-11-22T13:00:00.123", "9999-12-31T23:00:00", "2026-11-22T13:00:00Z"]
    env = {**os.environ, "TZ": "America/New_York"}
    proc = subprocess.run([sys.executable, "-c", _NAIVE_TIMES, json.dumps(GOOD), *times], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["zone"] == "-0500", "the check must run in a zone other than UTC"
    assert out["2026-11-22T13:00:00"] == {"event": "ok", "event_utc": "2026-11-22T13:00:00+00:00",
                                          "batch_utc": "2026-11-22T13:00:00+00:00"}
    assert out["2026-11-22T13:00:00.123"]["event_utc"] == out["2026-11-22T13:00:00.123"]["batch_utc"]
    assert out["2026-11-22T13:00:00Z"]["event_utc"] == "2026-11-22T13:00:00+00:00"
    late = out["9999-12-31T23:00:00"]  # read as local time it ran past the end of the calendar
    assert late["event"] == "ok" and late["event_utc"] == late["batch_utc"] == "9999-12-31T23:00:00+00:00"
