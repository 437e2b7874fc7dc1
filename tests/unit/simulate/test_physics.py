"""Machine physics: readings inside the contract, a few percent failures, failure modes that follow the physics."""

from __future__ import annotations

import numpy as np
import pytest

from ml.contract import check_records, load_contract, model_frame
from ml.simulate import SimConfig, Simulator
from ml.simulate.scenarios import parse_time

CONTRACT = load_contract("machine_telemetry")
START = parse_time("2026-11-01T00:00Z")
DAY = 86_400_000


@pytest.fixture(scope="module")
def day():
    """A day of a 200-machine fleet, about 170k readings."""
    return Simulator(CONTRACT, SimConfig(devices=200, rate=2.0, seed=3)).frame(START, START + DAY)


def test_every_reading_is_valid_under_the_contract(day):
    valid, rejects = check_records(CONTRACT, day)
    assert rejects.empty, rejects["reason"].head().tolist()
    assert len(valid) == len(day) == 2 * 86_400


def test_readings_look_like_the_ai4i_data(day):
    assert day["air_temperature_k"].mean() == pytest.approx(300, abs=1)
    assert day["process_temperature_k"].sub(day["air_temperature_k"]).mean() == pytest.approx(10, abs=0.3)
    assert day["rotational_speed_rpm"].mean() == pytest.approx(1540, abs=40)
    assert day["torque_nm"].mean() == pytest.approx(40, abs=3)
    assert day["tool_wear_min"].between(0, 250).all() and day["tool_wear_min"].max() > 200
    shares = day.drop_duplicates("device_id")["device_type"].value_counts(normalize=True)
    assert shares["L"] > shares["M"] > shares["H"] > 0.05
    assert set(day["site"]) == {"plant-a", "plant-b", "plant-c", "plant-d"}  # plant-e only under drift
    assert set(day["firmware"]) == {"1.4.2"}


def test_vibration_drops_out_rarely_within_the_contracts_null_rate(day):
    rate = day["vibration_mm_s"].isna().mean()
    assert 0 < rate < CONTRACT.feature("vibration_mm_s").max_null_rate


def test_failures_are_a_few_percent(day):
    assert 0.02 <= day["failure"].mean() <= 0.05


def test_failure_modes_follow_the_physics(day):
    x = model_frame(CONTRACT, day)
    y = day["failure"]
    heat = (x["temp_diff_k"] < 8.6) & (x["rotational_speed_rpm"] < 1380)
    power = (x["power_w"] < 3500) | (x["power_w"] > 9000)
    strain = x["tool_wear_min"] * x["torque_nm"] > 13_000
    calm = ~heat & ~power & (x["tool_wear_min"] * x["torque_nm"] < 11_000) & (x["tool_wear_min"] < 200)
    for mode in (heat, power, strain):
        assert mode.sum() > 100 and y[mode].mean() > 0.8
    assert y[calm].mean() < 0.005


def test_fleet_is_the_same_for_a_seed_and_differs_across_seeds():
    a = Simulator(CONTRACT, SimConfig(devices=50, seed=1)).generator
    b = Simulator(CONTRACT, SimConfig(devices=50, seed=1)).generator
    c = Simulator(CONTRACT, SimConfig(devices=50, seed=2)).generator
    assert np.array_equal(a.type_code, b.type_code) and np.array_equal(a.base_rpm, b.base_rpm)
    assert not np.array_equal(a.base_rpm, c.base_rpm)
