"""Sensor faults and bad records: what a faulty machine reports, and broken messages the DLQ must catch."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from ml.contract import ContractError, check_records, decode_event, load_contract
from ml.simulate import BadRecords, ScenarioError, SensorFault, SimConfig, Simulator
from ml.simulate.scenarios import BAD_KINDS, parse_time

MACHINE = load_contract("machine_telemetry")
WIND = load_contract(str(Path(__file__).resolve().parents[2] / "contracts" / "wind_turbine.yaml"))
START = parse_time("2026-11-01T00:00Z")
ONSET = START + 3_600_000
END = START + 4 * 3_600_000
NUMERIC = [f.name for f in MACHINE.numeric_features]
KIND_OF_REASON = {
    "malformed": r"^undecodable: ", "oversized": r"^oversized: ", "missing": r" is missing$",
    "wrong_type": r"must be (a number|a string) \(got ", "out_of_range": r"(above max|below min|not in allowed)",
}


def simulator(contract=MACHINE, *scenarios, seed=5) -> Simulator:
    return Simulator(contract, SimConfig(devices=20, rate=5.0, seed=seed, scenarios=scenarios))


def after_onset(df: pd.DataFrame) -> pd.Series:
    return df["ts"] >= pd.Timestamp(ONSET, unit="ms", tz="UTC")


def test_a_stuck_sensor_repeats_one_value_from_its_onset():
    normal = simulator().frame(START, END)
    faulty = simulator(MACHINE, SensorFault(start_ms=ONSET, device="dev-0003")).frame(START, END)
    mine = (faulty["device_id"] == "dev-0003") & after_onset(faulty)
    assert mine.sum() > 500
    for name in NUMERIC:
        assert faulty.loc[mine, name].nunique() == 1
        assert normal.loc[mine, name].nunique() > 1
    pd.testing.assert_frame_equal(faulty[~mine], normal[~mine])
    assert faulty["failure"].tolist() == normal["failure"].tolist()  # the machine's truth does not change
    assert check_records(MACHINE, faulty)[1].empty  # stuck values are plausible: only drift checks see them


def test_a_silent_sensor_sends_nulls_that_validation_rejects():
    fault = SensorFault(start_ms=ONSET, device="dev-0007", mode="null", fields=("torque_nm", "vibration_mm_s"))
    faulty = simulator(MACHINE, fault).frame(START, END)
    mine = (faulty["device_id"] == "dev-0007") & after_onset(faulty)
    assert faulty.loc[mine, ["torque_nm", "vibration_mm_s"]].isna().all().all()
    assert faulty.loc[mine, "air_temperature_k"].notna().all()
    _, rejects = check_records(MACHINE, faulty)
    assert rejects.index.tolist() == faulty.index[mine].tolist()
    assert set(rejects["reason"]) == {"torque_nm is missing"}  # vibration is nullable


def test_sensor_fault_names_a_machine_and_fields_that_exist():
    with pytest.raises(ScenarioError, match="no device 'dev-9999'"):
        simulator(MACHINE, SensorFault(device="dev-9999"))
    with pytest.raises(ScenarioError, match="'site' is not a numeric feature"):
        simulator(MACHINE, SensorFault(fields=("site",)))


@pytest.mark.parametrize("contract", [MACHINE, WIND], ids=["machine", "wind"])
def test_bad_records_of_every_kind_arrive_at_about_the_rate_and_are_all_caught(contract):
    rate = 0.05
    good = [b for b in simulator(contract).replay(START, ONSET + 3_600_000) if b.topic == "telemetry"]
    sim = simulator(contract, BadRecords(rate=rate))
    mixed = [b for b in sim.replay(START, ONSET + 3_600_000) if b.topic == "telemetry"]
    values = [v for b in mixed for v in b.values]
    events = sum(len(b) for b in good)
    rejected: Counter[str] = Counter()
    for value in values:
        try:
            decode_event(contract, value)
        except ContractError as exc:
            kind = next(k for k, pattern in KIND_OF_REASON.items() if re.search(pattern, str(exc)))
            rejected[kind] += 1
    assert sum(rejected.values()) == len(values) - events == sum(sim.stats.bad.values())
    assert rejected == Counter(sim.stats.bad)
    assert sum(rejected.values()) == pytest.approx(rate * events, rel=0.15)
    for kind in BAD_KINDS:
        assert rejected[kind] == pytest.approx(rate * events / len(BAD_KINDS), rel=0.35), kind
    good_values = {v for b in good for v in b.values}
    assert good_values <= set(values)  # the good stream is the same with or without bad records
    timestamps = [t for b in mixed for t in b.timestamps]
    assert timestamps == sorted(timestamps)


def test_bad_records_are_keyed_by_device_unless_the_device_field_is_gone():
    sim = simulator(MACHINE, BadRecords(rate=0.2, kinds=("missing",)))
    batch = next(b for b in sim.replay(START, ONSET) if b.topic == "telemetry")
    for key, value in zip(batch.keys, batch.values):
        event = orjson.loads(value)
        assert key == (event["device_id"].encode() if "device_id" in event else None)


def test_oversized_records_exceed_the_contracts_limit_but_fit_the_broker():
    sim = simulator(MACHINE, BadRecords(rate=0.2, kinds=("oversized",)))
    sizes = np.array([len(v) for b in sim.replay(START, ONSET) if b.topic == "telemetry" for v in b.values])
    big = sizes[sizes > MACHINE.limits.max_event_bytes]
    assert len(big) and big.max() < 1_000_000
