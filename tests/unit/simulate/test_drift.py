"""Drift scenarios move what they should, from their onset on, and nothing when they are off."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.contract import load_contract, model_frame
from ml.simulate import ConceptDrift, CovariateDrift, SimConfig, Simulator
from ml.simulate.scenarios import parse_time

MACHINE = load_contract("machine_telemetry")
WIND = load_contract(str(Path(__file__).resolve().parents[2] / "contracts" / "wind_turbine.yaml"))
START = parse_time("2026-11-01T00:00Z")
ONSET = START + 24 * 3_600_000  # two days, so both halves see the same daily temperature cycle
END = START + 48 * 3_600_000


def run(contract, *scenarios) -> pd.DataFrame:
    return Simulator(contract, SimConfig(devices=100, rate=0.5, seed=11, scenarios=scenarios)).frame(START, END)


def halves(df: pd.DataFrame, contract=MACHINE) -> tuple[pd.DataFrame, pd.DataFrame]:
    after = df[contract.event_time] >= pd.Timestamp(ONSET, unit="ms", tz="UTC")
    return df[~after], df[after]


@pytest.fixture(scope="module")
def normal():
    return run(MACHINE)


def test_without_drift_the_two_halves_look_alike(normal):
    before, after = halves(normal)
    for col, tolerance in [("air_temperature_k", 0.3), ("rotational_speed_rpm", 10), ("torque_nm", 0.5)]:
        assert after[col].mean() == pytest.approx(before[col].mean(), abs=tolerance)
        assert after[col].quantile(0.9) == pytest.approx(before[col].quantile(0.9), abs=3 * tolerance)
    assert after["failure"].mean() == pytest.approx(before["failure"].mean(), abs=0.01)


def test_covariate_drift_moves_machines_to_a_hotter_site_and_shifts_speed(normal):
    drifted = run(MACHINE, CovariateDrift(start_ms=ONSET, share=0.3, heat_k=6.0, speed_rpm=-150.0))
    base_before, base_after = halves(normal)
    before, after = halves(drifted)
    pd.testing.assert_frame_equal(before.reset_index(drop=True), base_before.reset_index(drop=True))
    assert "plant-e" not in set(before["site"])
    assert (after["site"] == "plant-e").mean() == pytest.approx(0.3, abs=0.1)
    hot = after[after["site"] == "plant-e"]["air_temperature_k"].mean()
    assert hot - base_after["air_temperature_k"].mean() == pytest.approx(6.0, abs=0.7)
    assert after["rotational_speed_rpm"].mean() - base_after["rotational_speed_rpm"].mean() == pytest.approx(-150, abs=10)
    assert after["air_temperature_k"].quantile(0.9) > base_after["air_temperature_k"].quantile(0.9) + 2


def test_concept_drift_changes_the_truth_not_the_readings(normal):
    drifted = run(MACHINE, ConceptDrift(start_ms=ONSET))
    pd.testing.assert_frame_equal(model_frame(MACHINE, drifted), model_frame(MACHINE, normal))
    before, after = halves(drifted)
    base_before, base_after = halves(normal)
    assert before["failure"].tolist() == base_before["failure"].tolist()
    assert after["failure"].mean() > base_after["failure"].mean() + 0.03
    assert set(after["firmware"]) == {"2.0.0"} and set(before["firmware"]) == {"1.4.2"}
    # the same readings now fail where they did not: heat dissipation at a larger temperature difference
    x = model_frame(MACHINE, after)
    band = (x["temp_diff_k"] > 8.8) & (x["temp_diff_k"] < 9.4) & (x["rotational_speed_rpm"] < 1380)
    assert after["failure"][band].mean() > 0.8 > base_after["failure"][band].mean() + 0.5


def test_a_scenario_share_affects_only_that_share_of_machines():
    drifted = run(MACHINE, ConceptDrift(start_ms=ONSET, share=0.5))
    _, after = halves(drifted)
    per_device = after.groupby("device_id")["firmware"].agg(lambda s: set(s))
    assert all(len(v) == 1 for v in per_device)
    assert (per_device.map(lambda v: "2.0.0" in v)).mean() == pytest.approx(0.5, abs=0.15)


def test_generic_contract_drifts_too():
    normal, cov, concept = run(WIND), run(WIND, CovariateDrift(start_ms=ONSET, share=1.0)), run(WIND, ConceptDrift(start_ms=ONSET))
    wind_sd = (40 - 0) / 8
    n_before, n_after = halves(normal, WIND)
    c_before, c_after = halves(cov, WIND)
    assert n_after["wind_speed_ms"].mean() == pytest.approx(n_before["wind_speed_ms"].mean(), abs=0.1 * wind_sd)
    assert c_after["wind_speed_ms"].mean() - n_after["wind_speed_ms"].mean() == pytest.approx(wind_sd, abs=0.2 * wind_sd)
    assert "storm-park" not in set(n_after["yaw_mode"]) and set(c_after["yaw_mode"]) == {"storm-park"}
    pd.testing.assert_frame_equal(model_frame(WIND, concept), model_frame(WIND, normal))
    k_before, k_after = halves(concept, WIND)
    assert 0.02 < k_after["gearbox_fault"].mean() < 0.07
    # positives had high wind before the onset, low wind after: same inputs, another relationship
    assert k_before[k_before["gearbox_fault"] == 1]["wind_speed_ms"].mean() > k_before["wind_speed_ms"].mean()
    assert k_after[k_after["gearbox_fault"] == 1]["wind_speed_ms"].mean() < k_after["wind_speed_ms"].mean()
    assert np.array_equal(k_before["gearbox_fault"], n_before["gearbox_fault"])
