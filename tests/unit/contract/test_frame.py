"""The one feature function: derived features and fixed categorical codes, for any contract."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.contract import ContractError, load_contract, model_frame

WIND = str(Path(__file__).resolve().parents[2] / "contracts" / "wind_turbine.yaml")


def machine_rows(**overrides) -> pd.DataFrame:
    rows = {
        "event_id": ["a", "b"], "device_id": ["dev-1", "dev-2"], "ts": ["2026-11-22T13:00:00.000Z"] * 2,
        "device_type": ["H", "L"], "site": ["plant-a", "plant-e"], "air_temperature_k": [300.0, 298.5],
        "process_temperature_k": [310.5, 308.0], "rotational_speed_rpm": [1500.0, 3000.0],
        "torque_nm": [40.0, 10.0], "tool_wear_min": [0.0, 120.0], "vibration_mm_s": [1.5, None],
        "firmware": ["1.4.2", "1.4.2"],
    }
    rows.update(overrides)
    return pd.DataFrame(rows)


def test_model_frame_returns_exactly_the_model_columns_with_derived_values():
    contract = load_contract("machine_telemetry")
    frame = model_frame(contract, machine_rows())
    assert list(frame.columns) == contract.model_columns
    assert frame["power_w"].tolist() == pytest.approx([40 * 1500 * 2 * math.pi / 60, 10 * 3000 * 2 * math.pi / 60])
    assert frame["temp_diff_k"].tolist() == pytest.approx([10.5, 9.5])
    assert math.isnan(frame["vibration_mm_s"][1])
    assert frame["torque_nm"].dtype == np.float64


def test_categorical_codes_are_the_contracts_whatever_the_data():
    """Training and serving see the same code for the same value, even if one batch lacks some values."""
    contract = load_contract("machine_telemetry")
    one = model_frame(contract, machine_rows())
    other = model_frame(contract, machine_rows(device_type=["L", "L"], site=["plant-e", "plant-e"]))
    assert list(one["device_type"].cat.categories) == ["L", "M", "H"]
    assert one["device_type"].cat.codes.tolist() == [2, 0]
    assert other["device_type"].cat.codes.tolist() == [0, 0]
    assert one["site"].cat.codes[1] == other["site"].cat.codes[0] == contract.categories("site").index("plant-e")


def test_unknown_category_becomes_missing_not_a_new_code():
    frame = model_frame(load_contract("machine_telemetry"), machine_rows(device_type=["X", "M"]))
    assert frame["device_type"].cat.codes.tolist() == [-1, 1]


def test_a_different_contract_gets_its_own_columns_and_ratio():
    wind = load_contract(WIND)
    rows = pd.DataFrame({"wind_speed_ms": [10.0, 0.0], "rotor_rpm": [15.0, 3.0], "gearbox_temp_c": [60.0, None],
                         "yaw_mode": ["auto", "storm-park"]})
    frame = model_frame(wind, rows)
    assert list(frame.columns) == ["wind_speed_ms", "rotor_rpm", "gearbox_temp_c", "yaw_mode", "tip_speed_ratio"]
    assert frame["tip_speed_ratio"][0] == pytest.approx(15.0 / 10.0 * 4.71)
    assert math.isnan(frame["tip_speed_ratio"][1])  # a division by zero is missing, not inf
    assert frame["yaw_mode"].cat.codes.tolist() == [0, 2]


def test_index_is_kept_and_missing_columns_are_named():
    contract = load_contract("machine_telemetry")
    rows = machine_rows().set_axis([10, 20])
    assert model_frame(contract, rows).index.tolist() == [10, 20]
    with pytest.raises(ContractError, match="features.torque_nm: column missing"):
        model_frame(contract, rows.drop(columns=["torque_nm"]))


@pytest.mark.parametrize("contract_name", ["machine_telemetry", WIND])
def test_model_matrix_is_model_frame_read_as_codes_from_dicts_and_from_arrow(contract_name):
    """The sidecar's pandas-free feature path gives exactly the frame's values: numerics and derived ones
    as float32, categoricals as their contract codes, nulls, unknown categories and zero divisors as NaN."""
    import pyarrow as pa

    from ml.contract import model_matrix
    from ml.serving.model import as_codes

    contract = load_contract(contract_name)
    rng = np.random.default_rng(7)
    rows = []  # as decode_event gives them: NaN for a null number, None for a null category
    for i in range(300):
        row = {contract.entity_key: f"dev-{i % 17}"}
        for feat in contract.features:
            if feat.kind == "categorical":
                values = [*contract.categories(feat.name), "unheard-of", None]
                row[feat.name] = values[rng.integers(0, len(values))]
            else:
                lo, hi = feat.min if feat.min is not None else -5.0, feat.max if feat.max is not None else 5.0
                draw = rng.random()
                row[feat.name] = math.nan if draw < 0.1 else 0.0 if draw < 0.2 else float(rng.uniform(lo, hi))
        rows.append(row)
    frame = pd.DataFrame(rows)
    expected = as_codes(model_frame(contract, frame))
    assert np.isnan(expected).any(), "the data has nulls"
    np.testing.assert_array_equal(model_matrix(contract, rows), expected)
    np.testing.assert_array_equal(model_matrix(contract, pa.Table.from_pandas(frame)), expected)
    assert model_matrix(contract, []).shape == (0, len(contract.model_columns))
