"""Typed settings sections: views of the same CONTINUUM_* variables, and buildable in code."""

from __future__ import annotations

from dataclasses import fields

import pytest

from ml.settings import (AlertSettings, DriftSettings, GateSettings, KafkaSettings, LiveSettings, MonitorSettings,
                         RetrainSettings, Settings, SettingsError, load_settings)
from ml.settings.sections import Section


def all_sections() -> list[type[Section]]:
    return list(Section.__subclasses__())


def test_a_section_is_built_from_the_environment_variables(monkeypatch):
    monkeypatch.setenv("CONTINUUM_DRIFT_SHARE_THRESHOLD", "0.45")
    monkeypatch.setenv("CONTINUUM_RETRAIN_COOLDOWN_HOURS", "2")
    monkeypatch.setenv("CONTINUUM_KAFKA_BOOTSTRAP", "broker:29092")
    settings = load_settings()
    assert settings.drift.share_threshold == 0.45 and settings.monitor.drift.share_threshold == 0.45
    assert settings.retrain.cooldown_hours == 2.0 and settings.kafka.bootstrap == "broker:29092"
    assert settings.drift is settings.drift  # built once


def test_every_section_field_views_a_setting_with_its_default():
    defaults = Settings(_env_file=None)
    for cls in all_sections():
        for f in fields(cls):
            if "setting" in f.metadata:
                assert f.metadata["setting"] in Settings.model_fields, f"{cls.__name__}.{f.name}"
                assert f.default == Settings.model_fields[f.metadata["setting"]].default, f"{cls.__name__}.{f.name}"
    assert GateSettings() == GateSettings.from_settings(defaults)
    assert KafkaSettings().topics["dlq"] == "telemetry.dlq"


def test_a_section_built_in_code_needs_no_environment(monkeypatch):
    monkeypatch.setenv("CONTINUUM_DRIFT_WINDOWS_K", "not a number")  # would stop load_settings
    drift = DriftSettings(share_threshold=0.5, windows_k=2)
    assert (drift.share_threshold, drift.windows_k, drift.sample_rows) == (0.5, 2, 100_000)
    bundle = MonitorSettings(drift=drift, live=LiveSettings(auc_floor=0.6), retrain=RetrainSettings(daily_budget=9))
    assert bundle.drift.windows_k == 2 and bundle.live.auc_floor == 0.6 and bundle.retrain.daily_budget == 9


@pytest.mark.parametrize("build, variable", [
    (lambda: DriftSettings(share_threshold=1.01), "CONTINUUM_DRIFT_SHARE_THRESHOLD (DriftSettings.share_threshold)"),
    (lambda: GateSettings(approval_policy="sometimes"), "CONTINUUM_APPROVAL_POLICY (GateSettings.approval_policy)"),
    (lambda: GateSettings(approvers="approver,,alice"), "CONTINUUM_APPROVERS (GateSettings.approvers)"),
    (lambda: KafkaSettings(bootstrap="localhost"), "CONTINUUM_KAFKA_BOOTSTRAP (KafkaSettings.bootstrap)"),
])
def test_a_wrong_value_in_code_names_the_variable_the_field_and_the_fix(build, variable):
    with pytest.raises(SettingsError) as err:
        build()
    assert variable in str(err.value) and "fix:" in str(err.value)


def test_a_value_at_the_edge_is_accepted():
    assert DriftSettings(share_threshold=1.0).share_threshold == 1.0
    assert AlertSettings(email_to=" a@x.org, ,b@x.org").recipients == ["a@x.org", "b@x.org"]
    assert GateSettings(approvers=" approver ,alice").approver_names == ["approver", "alice"]


def test_a_section_names_its_variable_for_messages():
    assert DriftSettings.variable("windows_k") == "CONTINUUM_DRIFT_WINDOWS_K"
    assert RetrainSettings.variable("threshold") == "CONTINUUM_SERVING_THRESHOLD"
