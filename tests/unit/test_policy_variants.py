"""Policy variants side by side, in one process: sections built in code, no environment at all.

What an in-process backtest does: the same evidence, windows and gate inputs judged under two policies
whose settings differ only where the variants differ.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ml.contract import load_contract, model_frame
from ml.drift import detect_drift
from ml.gates import GateInputs, check_gates
from ml.policy import DATA, NONE, Evidence, Policy, decide
from ml.settings import DriftSettings, GateSettings, LiveSettings, RetrainSettings
from ml.simulate.scenarios import parse_scenario
from ml.simulate.stream import SimConfig, Simulator

CONTRACT = load_contract("machine_telemetry")
HOUR, T0 = 3_600_000, 1_763_596_800_000
NOW = datetime(2026, 11, 22, 14, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def broken_environment(monkeypatch):
    """Every variable a variant reads set to nonsense: a function that read the environment would fail."""
    for name in ("DRIFT_SHARE_THRESHOLD", "DRIFT_WINDOWS_K", "DRIFT_SAMPLE_ROWS", "PROMOTION_MARGIN",
                 "RETRAIN_DAILY_BUDGET", "LIVE_AUC_FLOOR"):
        monkeypatch.setenv(f"CONTINUUM_{name}", "not a value")


def frame(*scenarios: str, start_h: int, hours: int = 1):
    sim = Simulator(CONTRACT, SimConfig(devices=500, rate=10, seed=5,
                                        scenarios=tuple(parse_scenario(s, T0) for s in scenarios)))
    return model_frame(CONTRACT, sim.frame(T0 + start_h * HOUR, T0 + (start_h + hours) * HOUR, with_label=False))


def variants(share: float, windows: int) -> tuple[DriftSettings, Policy]:
    drift = DriftSettings(share_threshold=share, windows_k=windows, sample_rows=5_000)
    return drift, Policy.from_settings(drift, LiveSettings(), RetrainSettings(cooldown_hours=0, daily_budget=5))


def test_two_drift_policies_judge_the_same_window_differently():
    reference, current = frame(start_h=0, hours=3), frame("covariate@+3h:share=0.5,heat_k=0,speed_rpm=0", start_h=3)
    strict, lenient = variants(0.1, 1)[0], variants(0.5, 1)[0]
    judged = {name: detect_drift(CONTRACT, reference, current, drift)[0] for name, drift in
              (("strict", strict), ("lenient", lenient))}
    assert "site" in judged["strict"].drifted and judged["strict"].drifted == judged["lenient"].drifted
    assert 0.1 <= judged["strict"].drift_share == judged["lenient"].drift_share < 0.5  # the same features moved
    assert judged["strict"].window_drifted and not judged["lenient"].window_drifted


def test_two_retrain_policies_decide_differently_on_the_same_evidence():
    evidence = Evidence(now=NOW, drift_shares=(0.35, 0.4), model_age_hours=10.0)
    (_, eager), (_, patient) = variants(0.3, 2), variants(0.3, 3)
    assert decide(evidence, eager).kind == DATA and decide(evidence, eager).retrain
    assert decide(evidence, patient).kind == NONE
    edge = variants(0.4, 1)[1]  # a share exactly at the threshold counts
    assert decide(Evidence(now=NOW, drift_shares=(0.4,)), edge).kind == DATA


def test_two_gate_margins_judge_the_same_challenger_differently():
    inputs = GateInputs({"holdout_roc_auc": 0.905, "champion_holdout_roc_auc": 0.90, "latency_ms_per_1k": 5.0},
                        "3", "valid", "ab" * 32, 1000, "ab" * 32)
    loose, tight = GateSettings(margin=0.005), GateSettings(margin=0.006)
    assert next(g for g in check_gates(inputs, "3", loose) if g.name == "metric").passed  # exactly the margin
    assert not next(g for g in check_gates(inputs, "3", tight) if g.name == "metric").passed
