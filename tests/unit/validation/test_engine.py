"""Running a suite with Great Expectations on small in-memory hours, and sorting failures by severity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.contract import load_contract
from ml.lake.window import Window
from ml.simulate.stream import SimConfig, Simulator
from ml.validation import SuiteError, build_suite
from ml.validation.engine import failures, run_suite

MACHINE = load_contract("machine_telemetry")
WIND = load_contract(str(Path(__file__).resolve().parents[2] / "contracts" / "wind_turbine.yaml"))
HOUR = Window.hour("2026-11-20T10")
PARAMS = {"window_start": HOUR.start.isoformat(), "window_end": HOUR.end.isoformat()}


def hour_frame(contract, rows_per_second: float = 0.2) -> pd.DataFrame:
    """One simulated hour as the offload stores it: the contract's columns plus Kafka partition/offset."""
    df = Simulator(contract, SimConfig(devices=10, rate=rows_per_second, seed=3)).frame(HOUR.start_ms, HOUR.end_ms, with_label=False)
    df["kafka_partition"] = np.zeros(len(df), dtype="int32")
    df["kafka_offset"] = np.arange(len(df), dtype="int64")
    return df


@pytest.mark.parametrize("contract", [MACHINE, WIND], ids=lambda c: c.name)
def test_a_clean_hour_passes_its_contracts_suite(contract):
    result = run_suite(hour_frame(contract), build_suite(contract, (10, 10_000)), PARAMS)
    assert result["success"], failures(result)
    assert failures(result) == ([], [])
    assert len(result["results"]) == len(build_suite(contract, (10, 10_000))["expectations"])


def test_broken_rows_are_critical_and_odd_ones_are_warnings():
    df = hour_frame(MACHINE)
    df.loc[1, "event_id"] = df.loc[0, "event_id"]
    df.loc[2, "ts"] = HOUR.end  # the first instant of the next hour
    df.loc[3, "ts"] = HOUR.start - pd.Timedelta(milliseconds=1)
    df.loc[4, "site"] = "mars"
    df.loc[: len(df) // 10, "vibration_mm_s"] = np.nan  # 10% nulls, the contract allows 2%
    critical, warnings = failures(run_suite(df, build_suite(MACHINE, (10_000, 20_000)), PARAMS))
    assert len(critical) == 3, critical
    assert _line(critical, "expect_column_values_to_be_unique(event_id): 2 of 720 rows")  # both copies
    assert df.loc[0, "event_id"] in _line(critical, "expect_column_values_to_be_unique(event_id)")
    assert _line(critical, "expect_column_values_to_be_between(ts): 2 of 720 rows")
    assert "mars" in _line(critical, "expect_column_values_to_be_in_set(site): 1 of 720 rows")
    assert len(warnings) == 2, warnings
    assert _line(warnings, "expect_table_row_count_to_be_between(table): observed 720")
    assert _line(warnings, "expect_column_values_to_not_be_null(vibration_mm_s): 73 of 720 rows")


def _line(lines: list[str], start: str) -> str:
    """The one failure line that starts with `start`."""
    found = [line for line in lines if line.startswith(start)]
    assert len(found) == 1, f"{start!r} not in {lines}"
    return found[0]


def test_wrong_types_and_columns_are_critical():
    df = hour_frame(MACHINE)
    df["torque_nm"] = df["torque_nm"].astype(str)
    df["ts"] = df["ts"].dt.tz_localize(None)  # a naive time is not the contract's UTC timestamp
    df = df.drop(columns=["firmware"]).assign(extra=1)
    critical, warnings = failures(run_suite(df, build_suite(MACHINE), PARAMS))
    assert _line(critical, "expect_table_columns_to_match_set(table): columns missing ['firmware'], unexpected ['extra']")
    assert _line(critical, "expect_column_values_to_be_of_type(firmware): column is missing")
    assert _line(critical, "expect_column_values_to_be_of_type(torque_nm): 720 of 720 rows (100%) unexpected, e.g. ['")
    assert _line(critical, "expect_column_values_to_be_between(torque_nm): error: ")
    assert _line(critical, "expect_column_values_to_be_of_type(ts): observed 'datetime64'")
    assert _line(critical, "expect_column_values_to_be_between(ts): error: can't compare offset-naive")
    assert len(critical) == 6 and not warnings


def test_an_empty_hour_is_critical_unless_the_band_allows_it():
    empty = hour_frame(MACHINE).iloc[:0]
    critical, _ = failures(run_suite(empty, build_suite(MACHINE), PARAMS))
    assert critical == ["expect_table_row_count_to_be_between(table): observed 0"]
    critical, warnings = failures(run_suite(empty, build_suite(MACHINE, (0, 100)), PARAMS))
    assert (critical, warnings) == ([], [])


def test_docs_are_great_expectations_own_site(tmp_path):
    run_suite(hour_frame(MACHINE), build_suite(MACHINE), PARAMS, docs_dir=tmp_path, run_name="telemetry-2026-11-20T10")
    pages = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.html"))
    assert pages[:2] == ["expectations/machine_telemetry.html", "index.html"]
    assert len(pages) == 3 and pages[2].startswith("validations/machine_telemetry/telemetry-2026-11-20T10/")
    page = (tmp_path / pages[2]).read_text()
    assert "values must be unique" in page
    assert HOUR.start.isoformat() in page, "the window parameters are filled in"


def test_an_expectation_gx_does_not_know_is_refused_not_dropped():
    suite = build_suite(MACHINE)
    suite["expectations"].append({"type": "expect_column_values_to_be_sparkly", "kwargs": {"column": "site"}})
    with pytest.raises(SuiteError, match="expect_column_values_to_be_sparkly"):
        run_suite(hour_frame(MACHINE), suite, PARAMS)
