"""The monitor's drift check of a window: decided on every row's summary, reported on a sample with the
decision's thresholds; methods the summaries cannot measure are measured on the sample."""

from __future__ import annotations

import pytest

from ml.contract import model_frame
from ml.drift.summary import Summary
from ml.lake import Lake
from ml.lake.window import Window
from ml.monitor.drift_check import check_window, drift_share
from ml.settings import DriftSettings
from ml.simulate.stream import SimConfig, Simulator
from tests.unit.lake_hours import CONTRACT, telemetry

HOURS = [Window.hour("2025-11-20T10"), Window.hour("2025-11-20T11")]


@pytest.fixture(scope="module")
def window(tmp_path_factory):
    lake = Lake(str(tmp_path_factory.mktemp("lake")))
    manifests = [telemetry(lake, hour, 3000, seed=i) for i, hour in enumerate(HOURS)]
    reference = Simulator(CONTRACT, SimConfig(devices=50, rate=1, seed=7)).frame(HOURS[0].start_ms, HOURS[1].end_ms)
    return lake, manifests, reference


def test_the_decision_counts_every_row_and_the_report_shows_its_thresholds(window):
    lake, manifests, reference = window
    drift = DriftSettings(sample_rows=1000, calibrate=True)
    result, snapshot = check_window(lake, CONTRACT, drift, reference, manifests)
    assert result.basis == "sketch" and result.current_rows == sum(m["rows"] for m in manifests) > 5000
    assert result.reference_rows == len(reference) and result.false_alarm_rate == drift.false_alarm_rate
    reported = {m["config"]["column"]: float(m["config"]["threshold"]) for m in snapshot.dict()["metrics"]
                if m["config"].get("type") == "evidently:metric_v2:ValueDrift"}
    assert reported == {f.name: f.threshold for f in result.features}
    assert drift_share(lake, CONTRACT, drift, reference, manifests) == result.drift_share
    expected = Summary.of(CONTRACT, model_frame(CONTRACT, reference))
    assert {f.name for f in result.features} == set(expected.numeric) | set(expected.categorical)


def test_other_methods_are_measured_on_the_sample_with_their_fixed_thresholds(window):
    lake, manifests, reference = window
    ks = DriftSettings(num_method="ks", num_threshold=0.05, sample_rows=1000)
    result, snapshot = check_window(lake, CONTRACT, ks, reference, manifests, report=False)
    assert snapshot is None and result.basis == "sample" and result.current_rows <= 1000
    assert {f.threshold for f in result.features if f.kind == "numeric"} == {0.05}
