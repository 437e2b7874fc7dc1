"""Calibrated thresholds at 1k, 10k and 100k rows a window: 48 clean windows ask for nothing, a covariate
shift asks for a retrain within 3 windows of its onset.

As the monitor runs: a 10,000-row reference sampled from a training day (`reference_frame`), each window's
6 hours compared with the reference rows of the same hours of the day, from merged hour summaries, the
drift shares judged by the policy (3 consecutive drifted windows ask for a retrain).
"""

from __future__ import annotations

import pandas as pd
import pytest

from ml.contract import load_contract, model_frame
from ml.drift.sketch import sketch_drift
from ml.drift.summary import Summary
from ml.monitor.reference import MIN_REFERENCE_ROWS, Reference, same_hours_of_day
from ml.policy import DATA, Evidence, Policy, decide
from ml.settings import DriftSettings
from ml.simulate import CovariateDrift
from ml.simulate.stream import SimConfig, Simulator
from ml.train.track import reference_frame

CONTRACT = load_contract("machine_telemetry")
HOUR = 3_600_000
T0 = 1_763_596_800_000  # 2025-11-20T00:00Z
DEVICES, SEED, WINDOW_HOURS = 2000, 21, 6
QUIET, SHIFTED = 53, 3  # hours after the training day: 48 clean 6-hour windows, then 3 windows ending in the shift
ONSET = T0 + (24 + QUIET) * HOUR
DRIFT = DriftSettings(calibrate=True)
POLICY = Policy(drift_share_threshold=DRIFT.share_threshold, drift_windows_k=DRIFT.windows_k)


@pytest.fixture(scope="module")
def reference() -> Reference:
    training = Simulator(CONTRACT, SimConfig(devices=DEVICES, rate=0.5, seed=SEED)).frame(T0, T0 + 24 * HOUR)
    return Reference.from_training(CONTRACT, reference_frame(CONTRACT, training))


def hour_summaries(rows: int) -> list[tuple[str, Summary]]:
    """The hours after the training day, at `rows` rows per 6-hour window, the shift from ONSET on."""
    sim = Simulator(CONTRACT, SimConfig(devices=DEVICES, rate=rows / (WINDOW_HOURS * 3600), seed=SEED,
                                        scenarios=(CovariateDrift(start_ms=ONSET),)))
    frame = sim.frame(T0 + 24 * HOUR, ONSET + SHIFTED * HOUR, with_label=False)
    starts = frame["ts"].dt.floor("h")
    return [(start.isoformat(), Summary.of(CONTRACT, model_frame(CONTRACT, part)))
            for start, part in frame.groupby(starts)]


@pytest.mark.parametrize("rows", [1_000, 10_000, 100_000])
def test_clean_windows_ask_for_nothing_and_a_covariate_shift_is_found_within_three_windows(reference, rows):
    hours, references, shares, decisions = hour_summaries(rows), {}, [], []
    for end in range(WINDOW_HOURS, len(hours) + 1):
        labels = [label for label, _ in hours[end - WINDOW_HOURS:end]]
        of_day = tuple(sorted({pd.Timestamp(h).hour for h in labels}))
        if of_day not in references:
            rows_of_day, note = same_hours_of_day(reference, labels, MIN_REFERENCE_ROWS)
            assert rows_of_day is not None, note
            references[of_day] = Summary.of(CONTRACT, model_frame(CONTRACT, rows_of_day))
        current = Summary.merged([s for _, s in hours[end - WINDOW_HOURS:end]])
        shares.append(sketch_drift(CONTRACT, references[of_day], current, DRIFT).drift_share)
        decisions.append(decide(Evidence(now=pd.Timestamp(labels[-1]).to_pydatetime(),
                                         drift_shares=tuple(shares[-POLICY.drift_windows_k:])), POLICY).kind)
    clean, shifted = decisions[:48], decisions[48:]
    over = sum(s >= DRIFT.share_threshold for s in shares[:48])
    print(f"\n{rows:,} rows a window: {over} of 48 clean windows at or over the share, largest share "
          f"{max(shares[:48]):.2f}; shares after the onset {[round(s, 2) for s in shares[48:]]}")
    assert len(clean) == 48 and DATA not in clean
    assert DATA in shifted, shares[48:]
