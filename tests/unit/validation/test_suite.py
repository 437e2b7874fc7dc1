"""Building the Great Expectations suite from a contract, and the committed suite in `expectations/`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from ml.contract import load_contract
from ml.contract.codec import codec_for
from ml.validation import CRITICAL, EXPECTATIONS_DIR, WARNING, SuiteError, build_suite, load_suite, suite_path
from ml.validation.cli import main as cli_main

MACHINE = load_contract("machine_telemetry")
WIND = load_contract(str(Path(__file__).resolve().parents[2] / "contracts" / "wind_turbine.yaml"))


def _find(suite: dict, kind: str, column: str | None = None) -> list[dict]:
    return [e for e in suite["expectations"] if e["type"] == kind and (column is None or e["kwargs"].get("column") == column)]


def _one(suite: dict, kind: str, column: str | None = None) -> dict:
    found = _find(suite, kind, column)
    assert len(found) == 1, f"expected one {kind} on {column}, found {len(found)}"
    return found[0]


def test_committed_suite_matches_the_shipped_contract():
    """A contract change without a regenerated suite fails here (and validation refuses the stale suite)."""
    path = suite_path(MACHINE.name)
    assert path.parent == EXPECTATIONS_DIR and path.is_file(), f"missing {path}"
    committed = json.loads(path.read_text())
    band = committed["meta"]["volume_band"]
    fresh = build_suite(MACHINE, None if band is None else tuple(band))
    assert committed == fresh, f"{path} is stale: regenerate it with `{fresh['meta']['generated_by']}`"
    assert load_suite(MACHINE) == committed
    for feat in MACHINE.features:
        _one(committed, "expect_column_values_to_not_be_null", feat.name)
        _one(committed, "expect_column_values_to_be_of_type", feat.name)
        kind = "expect_column_values_to_be_in_set" if feat.kind == "categorical" else "expect_column_values_to_be_between"
        _one(committed, kind, feat.name)


def test_columns_types_ranges_and_allowed_values_come_from_the_contract():
    suite = build_suite(MACHINE)
    schema = codec_for(MACHINE, "telemetry").output_schema
    columns = _one(suite, "expect_table_columns_to_match_set")["kwargs"]
    assert columns == {"column_set": schema.names, "exact_match": True}
    assert schema.names[-2:] == ["kafka_partition", "kafka_offset"]
    types = {e["kwargs"]["column"]: e["kwargs"]["type_"] for e in _find(suite, "expect_column_values_to_be_of_type")}
    assert types == {"event_id": "str", "device_id": "str", "ts": "Timestamp", "device_type": "str", "site": "str",
                     "air_temperature_k": "float64", "process_temperature_k": "float64", "rotational_speed_rpm": "float64",
                     "torque_nm": "float64", "tool_wear_min": "float64", "vibration_mm_s": "float64", "firmware": "str",
                     "kafka_partition": "int32", "kafka_offset": "int64"}
    torque = _one(suite, "expect_column_values_to_be_between", "torque_nm")["kwargs"]
    assert (torque["min_value"], torque["max_value"]) == (0, 100)
    assert _one(suite, "expect_column_values_to_be_in_set", "site")["kwargs"]["value_set"] == list(MACHINE.categories("site"))
    window = _one(suite, "expect_column_values_to_be_between", "ts")["kwargs"]
    assert window["min_value"] == {"$PARAMETER": "window_start"} and window["max_value"] == {"$PARAMETER": "window_end"}
    assert window["strict_max"] is True  # the hour is [start, end)
    _one(suite, "expect_column_values_to_be_unique", "event_id")
    assert _one(suite, "expect_compound_columns_to_be_unique")["kwargs"]["column_list"] == ["kafka_partition", "kafka_offset"]
    assert not _find(suite, "expect_column_values_to_not_be_null", "firmware"), "passthrough fields may be null"


def test_severities_critical_for_broken_hours_warning_for_odd_ones():
    suite = build_suite(MACHINE, volume_band=(1000, 50_000))
    warnings = [(e["type"], e["kwargs"].get("column")) for e in suite["expectations"] if e["severity"] == WARNING]
    assert sorted(warnings, key=str) == [("expect_column_values_to_not_be_null", "vibration_mm_s"),
                                         ("expect_table_row_count_to_be_between", None)]
    assert {e["severity"] for e in suite["expectations"]} == {CRITICAL, WARNING}
    nulls = _one(suite, "expect_column_values_to_not_be_null", "vibration_mm_s")["kwargs"]
    assert nulls["mostly"] == pytest.approx(1 - MACHINE.feature("vibration_mm_s").max_null_rate)
    assert "mostly" not in _one(suite, "expect_column_values_to_not_be_null", "torque_nm")["kwargs"]
    counts = {e["severity"]: e["kwargs"] for e in _find(suite, "expect_table_row_count_to_be_between")}
    assert counts[CRITICAL]["min_value"] == 1, "an empty hour is critical"
    assert (counts[WARNING]["min_value"], counts[WARNING]["max_value"]) == (1000, 50_000)
    assert suite["meta"]["volume_band"] == [1000, 50_000]
    assert "--min-rows 1000 --max-rows 50000" in suite["meta"]["generated_by"]


def test_a_band_from_zero_allows_an_empty_hour_and_a_bad_band_is_refused():
    counts = _find(build_suite(MACHINE, volume_band=(0, 10)), "expect_table_row_count_to_be_between")
    assert [c["severity"] for c in counts] == [WARNING]
    with pytest.raises(SuiteError, match="volume band"):
        build_suite(MACHINE, volume_band=(10, 5))


def test_build_suite_is_generic_over_contracts():
    suite = build_suite(WIND)
    assert suite["name"] == "wind_turbine" and suite["meta"]["schema_hash"] == WIND.schema_hash()
    columns = _one(suite, "expect_table_columns_to_match_set")["kwargs"]["column_set"]
    assert columns == WIND.fields + ["kafka_partition", "kafka_offset"]
    _one(suite, "expect_column_values_to_be_unique", "reading_id")
    assert _one(suite, "expect_column_values_to_be_between", "measured_at")["kwargs"]["strict_max"] is True
    gearbox = _one(suite, "expect_column_values_to_not_be_null", "gearbox_temp_c")
    assert gearbox["severity"] == WARNING and gearbox["kwargs"]["mostly"] == pytest.approx(0.95)
    assert _one(suite, "expect_column_values_to_be_between", "gearbox_temp_c")["kwargs"]["min_value"] == -30
    assert _one(suite, "expect_column_values_to_be_in_set", "yaw_mode")["kwargs"]["value_set"] == ["auto", "manual", "storm-park"]
    assert not _find(suite, "expect_column_values_to_be_between", "tip_speed_ratio"), "derived features are not in the lake"
    assert json.loads(json.dumps(suite)) == suite


def test_load_suite_names_the_missing_file_and_the_command(tmp_path):
    with pytest.raises(SuiteError, match=r"wind_turbine\.json.*continuum-expectations --contract \S*wind_turbine\.yaml`"):
        load_suite(WIND, tmp_path)


def test_load_suite_refuses_a_suite_built_for_another_contract_version(tmp_path):
    assert cli_main(["--contract", WIND.source, "--out", str(tmp_path / "wind_turbine.json")]) == 0
    assert load_suite(WIND, tmp_path) == build_suite(WIND)
    changed = dataclasses.replace(WIND, features=WIND.features[:-1])
    with pytest.raises(SuiteError, match="another version.*regenerate"):
        load_suite(changed, tmp_path)


def test_cli_writes_the_band_and_wants_both_bounds(tmp_path, capsys):
    out = tmp_path / "suite.json"
    assert cli_main(["--contract", "machine_telemetry", "--out", str(out), "--min-rows", "5", "--max-rows", "9"]) == 0
    assert json.loads(out.read_text()) == build_suite(MACHINE, (5, 9))
    with pytest.raises(SystemExit):
        cli_main(["--contract", "machine_telemetry", "--out", str(out), "--min-rows", "5"])
    assert "both --min-rows and --max-rows" in capsys.readouterr().err
    assert cli_main(["--contract", "no_such_contract", "--out", str(out)]) == 2
