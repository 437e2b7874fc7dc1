"""The monitor's drift check of one window: the verdict from the summaries of every row, the report from a sample.

The verdict the policy reads (`sketch_drift`) compares the merged summaries of the window's hours with
the summary of the champion's reference rows of the same hours of the day, with thresholds calibrated
at the window's row count: its cost grows with the number of hours, not rows. The Evidently report, for a
person to read, is drawn on a sample of the window's rows (`DriftSettings.sample_rows`, each hour giving
its share) with the same per-feature thresholds, and it is drawn only when asked for. Drift methods the
summaries cannot measure (anything but the default Wasserstein and Jensen-Shannon distances) are
measured on that sample instead, with their fixed thresholds.
"""

from __future__ import annotations

import pandas as pd

from ml.contract import Contract, model_frame
from ml.drift.detect import SAMPLE_SEED, DriftResult, detect_drift, measure_drift
from ml.drift.hours import window_sample, window_summary
from ml.drift.sketch import sketch_drift, sketch_supported
from ml.drift.summary import Summary
from ml.lake import Lake
from ml.settings import DriftSettings


def check_window(lake: Lake, contract: Contract, drift: DriftSettings, reference: pd.DataFrame, manifests: list[dict],
                 importances: dict[str, float] | None = None, report: bool = True):
    """The window's `DriftResult` against the reference rows, and Evidently's snapshot when `report`
    (else None). `manifests`: the window's valid hours (`ml.validation.valid_hours`)."""
    ref = model_frame(contract, reference)
    if sketch_supported(drift):
        result = sketch_drift(contract, Summary.of(contract, ref), window_summary(lake, contract, manifests), drift,
                              importances)
        if not report:
            return result, None
        thresholds = {f.name: f.threshold for f in result.features}
        _, snapshot = detect_drift(contract, ref, _sample(lake, contract, drift, manifests), drift, importances,
                                   thresholds=thresholds)
        return result, snapshot
    current = _sample(lake, contract, drift, manifests)
    if not report:
        return measure_drift(contract, ref, current, drift, importances), None
    return detect_drift(contract, ref, current, drift, importances)


def drift_share(lake: Lake, contract: Contract, drift: DriftSettings, reference: pd.DataFrame, manifests: list[dict],
                importances: dict[str, float] | None = None) -> float:
    """The window's drift share as `check_window` measures it, without the report."""
    result: DriftResult = check_window(lake, contract, drift, reference, manifests, importances, report=False)[0]
    return result.drift_share


def _sample(lake: Lake, contract: Contract, drift: DriftSettings, manifests: list[dict]) -> pd.DataFrame:
    return model_frame(contract, window_sample(lake, contract, manifests, drift.sample_rows, SAMPLE_SEED))
