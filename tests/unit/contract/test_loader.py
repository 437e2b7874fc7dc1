"""Loading contracts: the default one, a different one, and errors that name the field and the file."""

from __future__ import annotations

import copy
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from ml.contract import CONTRACTS_DIR, ContractError, load_contract, parse_contract

WIND = Path(__file__).resolve().parents[2] / "contracts" / "wind_turbine.yaml"


@pytest.fixture(scope="module")
def machine():
    return load_contract("machine_telemetry")


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load((CONTRACTS_DIR / "machine_telemetry.yaml").read_text())


def test_machine_telemetry_declares_the_stream(machine):
    assert (machine.event_id, machine.entity_key, machine.event_time) == ("event_id", "device_id", "ts")
    assert machine.raw_columns == [
        "device_type", "site", "air_temperature_k", "process_temperature_k", "rotational_speed_rpm",
        "torque_nm", "tool_wear_min", "vibration_mm_s",
    ]
    assert machine.model_columns == machine.raw_columns + ["power_w", "temp_diff_k"]
    assert machine.passthrough == ("firmware",)
    assert machine.categories("device_type") == ("L", "M", "H")
    assert "plant-e" in machine.categories("site")
    assert machine.feature("vibration_mm_s").nullable and not machine.feature("torque_nm").nullable
    label = machine.label
    assert (label.topic, label.join_key, label.field, label.observed_at) == ("outcomes", "event_id", "failure", "observed_at")
    assert label.expected_delay_minutes < label.max_delay_minutes


def test_a_different_contract_loads_by_path(machine):
    wind = load_contract(str(WIND))
    assert wind.name == "wind_turbine" and wind.event_id == "reading_id" and wind.entity_key == "turbine"
    assert len(wind.features) != len(machine.features)
    assert [f.name for f in wind.categorical_features] == ["yaw_mode"]
    assert wind.model_columns[-1] == "tip_speed_ratio" and wind.derived[0].op == "ratio"
    assert wind.label.field == "gearbox_fault" and wind.passthrough == ("farm", "model_line")


def test_arrow_schema_types_every_field(machine):
    schema = machine.arrow_schema()
    assert schema.names == machine.fields
    assert schema.field("ts").type == pa.timestamp("ms", tz="UTC")
    assert schema.field("torque_nm").type == pa.float64() and not schema.field("torque_nm").nullable
    assert schema.field("vibration_mm_s").nullable
    assert schema.field("site").type == pa.string() and schema.field("firmware").type == pa.string()
    label = machine.label_arrow_schema()
    assert label.names == ["event_id", "device_id", "failure", "observed_at"]
    assert label.field("observed_at").type == pa.timestamp("ms", tz="UTC")
    assert schema.metadata[b"schema_hash"].decode() == machine.schema_hash()


def test_schema_hash_follows_meaning_not_wording(raw, tmp_path):
    base = parse_contract(copy.deepcopy(raw)).schema_hash()
    reworded = copy.deepcopy(raw)
    reworded["description"] = "something else"
    reworded["features"][0]["description"] = "other words"
    assert parse_contract(reworded, "elsewhere.yaml").schema_hash() == base
    widened = copy.deepcopy(raw)
    widened["features"][5]["max"] = 120
    assert parse_contract(widened).schema_hash() != base
    path = tmp_path / "copy.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert load_contract(str(path)).schema_hash() == base == load_contract("machine_telemetry").schema_hash()


def _feature(raw: dict, name: str) -> dict:
    return next(f for f in raw["features"] if f["name"] == name)


ERRORS = [
    (lambda r: _feature(r, "torque_nm").update(min="low"), "features.torque_nm.min: must be a number"),
    (lambda r: _feature(r, "torque_nm").update(maxx=3), "features.torque_nm.maxx: unknown key"),
    (lambda r: _feature(r, "torque_nm").update(min=200), "features.torque_nm.min: must be below max"),
    (lambda r: _feature(r, "torque_nm").update(kind="float"), "features.torque_nm.kind: must be numeric or categorical"),
    (lambda r: _feature(r, "torque_nm").update(max_null_rate=0.1), "features.torque_nm.max_null_rate"),
    (lambda r: _feature(r, "site").update(allowed=["a", "a"]), "features.site.allowed: must be a list of distinct"),
    (lambda r: _feature(r, "site").update(min=0), "features.site.min: only numeric features"),
    (lambda r: _feature(r, "site").update(name="torque_nm"), "features.torque_nm: name 'torque_nm' is already used"),
    (lambda r: r["derived"][0].update(op="eval"), "derived.power_w.op: must be one of"),
    (lambda r: r["derived"][0].update(inputs=["torque_nm", "site"]), "derived.power_w.inputs: 'site' is not a numeric"),
    (lambda r: r["derived"][1].update(inputs=["torque_nm"]), "derived.temp_diff_k.inputs: difference needs exactly 2"),
    (lambda r: r.pop("label"), "label: is required"),
    (lambda r: r["label"].update(join_key="nope"), "label.join_key: 'nope' is not a field"),
    (lambda r: r["label"].update(max_delay_minutes=5), "label.max_delay_minutes: must be >="),
    (lambda r: r.update(event_time="ts time"), "event_time: must be a name"),
    (lambda r: r["limits"].update(max_event_bytes=0), "limits.max_event_bytes: must be > 0"),
    (lambda r: r.update(features=[]), "features: must declare at least one feature"),
]


@pytest.mark.parametrize("mutate, message", ERRORS, ids=[m for _, m in ERRORS])
def test_a_contract_error_names_the_field_and_the_file(raw, tmp_path, mutate, message):
    mutate(raw)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ContractError) as err:
        load_contract(str(path))
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_unknown_name_and_bad_yaml(tmp_path):
    with pytest.raises(ContractError, match="packaged contracts: .*machine_telemetry"):
        load_contract("no_such_contract")
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ContractError, match="not valid YAML"):
        load_contract(str(path))


def test_categories_of_a_numeric_feature_is_an_error(machine):
    with pytest.raises(ContractError, match="features.torque_nm: is numeric"):
        machine.categories("torque_nm")
    with pytest.raises(ContractError, match="features.nope: no such feature"):
        machine.feature("nope")
