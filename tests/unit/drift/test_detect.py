"""Drift detection on simulated telemetry: quiet on the same stream, loud on shifted inputs, per feature."""

from __future__ import annotations

import pandas as pd
import pytest

from ml.contract import ContractError, load_contract, model_frame
from ml.drift import detect_drift, measure_drift, sample
from ml.settings import DriftSettings
from ml.simulate.scenarios import parse_scenario
from ml.simulate.stream import SimConfig, Simulator

CONTRACT = load_contract("machine_telemetry")
HOUR = 3_600_000
T0 = 1_763_596_800_000  # 2025-11-20T00:00Z
SETTINGS = DriftSettings(sample_rows=20_000)
SHIFTED = {"air_temperature_k", "process_temperature_k", "rotational_speed_rpm", "torque_nm", "site"}


def window(*scenarios: str, start_h: int = 4, hours: int = 1) -> pd.DataFrame:
    parsed = tuple(parse_scenario(spec, T0) for spec in scenarios)
    sim = Simulator(CONTRACT, SimConfig(devices=2000, rate=10, seed=3, scenarios=parsed))
    return model_frame(CONTRACT, sim.frame(T0 + start_h * HOUR, T0 + (start_h + hours) * HOUR, with_label=False))


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return window(start_h=0, hours=4)


def test_two_samples_of_the_same_stream_do_not_drift(reference):
    result, _ = detect_drift(CONTRACT, reference, window(), SETTINGS)
    assert result.drifted == () and result.drift_share == 0.0 and not result.window_drifted
    assert len(result.features) == len(CONTRACT.model_columns)
    assert max(f.score for f in result.features) < 0.05


def test_a_covariate_shift_makes_the_shifted_features_drift(reference):
    result, _ = detect_drift(CONTRACT, reference, window("covariate@+4h"), SETTINGS)
    assert SHIFTED <= set(result.drifted)
    assert "device_type" not in result.drifted and "tool_wear_min" not in result.drifted
    assert result.drift_share > SETTINGS.share_threshold and result.window_drifted
    scores = {f.name: f for f in result.features}
    assert scores["air_temperature_k"].method == "wasserstein" and scores["site"].method == "jensenshannon"
    assert scores["air_temperature_k"].score > scores["air_temperature_k"].threshold == 0.1


def test_a_new_site_appearing_is_categorical_drift_on_site_alone(reference):
    current = window("covariate@+4h:share=0.5,heat_k=0,speed_rpm=0")
    assert (current["site"] == "plant-e").any() and not (reference["site"] == "plant-e").any()
    result, _ = detect_drift(CONTRACT, reference, current, SETTINGS)
    assert result.drifted == ("site",)
    assert result.drift_share == pytest.approx(1 / len(CONTRACT.model_columns))


def test_a_share_at_the_threshold_is_a_drifted_window_as_the_evidently_report_says(reference):
    # one feature of ten drifted, and a threshold of 0.1: the report's own test of the share fails at it
    settings = DriftSettings(sample_rows=20_000, share_threshold=1 / len(CONTRACT.model_columns))
    result, snapshot = detect_drift(CONTRACT, reference, window("covariate@+4h:share=0.5,heat_k=0,speed_rpm=0"),
                                    settings)
    assert result.drifted == ("site",) and result.drift_share == settings.share_threshold
    share_test = next(t for t in snapshot.dict()["tests"] if t["name"].startswith("Share of Drifted Columns"))
    assert str(share_test["status"]).endswith("FAIL") and result.window_drifted, share_test


def test_sampling_keeps_the_verdict_and_the_scores(reference):
    current = window("covariate@+4h:share=0.2")
    full, _ = detect_drift(CONTRACT, reference, current, DriftSettings(sample_rows=500_000))
    small, _ = detect_drift(CONTRACT, reference, current, DriftSettings(sample_rows=5_000))
    assert small.drifted == full.drifted and small.drifted
    for a, b in zip(full.features, small.features):
        assert b.score == pytest.approx(a.score, rel=0.1, abs=0.03), a.name
    assert (full.sample_cap, small.current_rows) == (500_000, len(current))


def test_sample_is_deterministic_and_capped(reference):
    first, again = sample(reference, 1000), sample(reference, 1000)
    assert len(first) == 1000 and first.index.equals(again.index)
    assert sample(reference, len(reference) + 1) is reference


def test_the_features_the_model_leans_on_are_named_with_their_drift(reference):
    importances = {"torque_nm": 5.0, "tool_wear_min": 9.0, "site": 1.0, "device_type": 0.5, "not_a_column": 99.0}
    result, _ = detect_drift(CONTRACT, reference, window("covariate@+4h"), SETTINGS, importances, top_k=3)
    assert result.top_features == ("tool_wear_min", "torque_nm", "site")
    assert result.top_drifted == ("torque_nm", "site")
    assert {f.name: f.importance for f in result.features}["tool_wear_min"] == 9.0
    summary = result.to_dict()
    assert summary["top_drifted"] == ["torque_nm", "site"] and summary["window_drifted"] is True


def test_a_frame_without_the_model_columns_is_refused(reference):
    with pytest.raises(ContractError, match="lacks model columns torque_nm"):
        detect_drift(CONTRACT, reference, window().drop(columns=["torque_nm"]), SETTINGS)
    with pytest.raises(ValueError, match="need rows on both sides"):
        detect_drift(CONTRACT, reference, reference.iloc[:0], SETTINGS)


@pytest.mark.parametrize("scenario", [None, "covariate@+4h", "covariate@+4h:share=0.5,heat_k=0,speed_rpm=0",
                                      "covariate@+4h:share=0.2"])
def test_measuring_without_the_report_gives_the_reports_verdicts(reference, scenario):
    current = window(scenario) if scenario else window()
    importances = {"torque_nm": 5.0, "tool_wear_min": 9.0, "site": 1.0}
    settings = DriftSettings(sample_rows=5_000, share_threshold=0.2)
    reported, _ = detect_drift(CONTRACT, reference, current, settings, importances)
    assert measure_drift(CONTRACT, reference, current, settings, importances) == reported
    # also for the other methods a user may configure, and a share at its edge
    other = DriftSettings(sample_rows=5_000, num_method="ks", cat_method="chisquare", num_threshold=0.05,
                          cat_threshold=0.05)
    assert measure_drift(CONTRACT, reference, current, other) == detect_drift(CONTRACT, reference, current, other)[0]


def test_measuring_refuses_what_detecting_refuses(reference):
    with pytest.raises(ContractError, match="lacks model columns torque_nm"):
        measure_drift(CONTRACT, reference, window().drop(columns=["torque_nm"]), SETTINGS)
    with pytest.raises(ValueError, match="need rows on both sides"):
        measure_drift(CONTRACT, reference, reference.iloc[:0], SETTINGS)
