"""Drift of a window against the reference from their summaries: every row counts, memory stays flat.

The distances are Evidently's, computed from the summaries (`ml.drift.summary`) instead of the rows:
- numeric, normed Wasserstein: the first Wasserstein distance is the area between the two quantile
  functions; here between the distributions the two KLL sketches keep (values with weights), normed
  by the reference's exact standard deviation (at least 0.001, as Evidently norms it);
- categorical, Jensen-Shannon: from the exact counts per value, on the union of the values seen.
Each feature's threshold is calibrated on the reference at the window's row count
(`ml.drift.calibrate`), never below the fixed threshold of its kind (the smallest distance that counts as
drift, however many rows show it), or, with calibration off, that fixed threshold. The verdict is a
`DriftResult` like the sampled check's, with `basis` "sketch" and the rows of both sides in full.

    result = sketch_drift(contract, reference_summary, window_summary, settings.drift, importances)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

from ml.contract import Contract
from ml.drift.calibrate import MIN_NORM, calibrated_thresholds
from ml.drift.detect import DriftResult, FeatureDrift, measure_drift
from ml.drift.summary import CategoricalSummary, NumericSummary, Summary
from ml.settings import DriftSettings

WASSERSTEIN, JENSEN_SHANNON = "wasserstein", "jensenshannon"


def sketch_supported(drift: DriftSettings) -> bool:
    """Whether the summaries can measure `drift`'s methods (the defaults can; other Evidently methods are
    measured on samples of the rows)."""
    return drift.num_method == WASSERSTEIN and drift.cat_method == JENSEN_SHANNON


def wasserstein_norm(reference: NumericSummary, current: NumericSummary) -> float:
    """Evidently's normed Wasserstein distance, between the two sketched distributions."""
    ref_values, ref_weights = reference.items()
    cur_values, cur_weights = current.items()
    return float(stats.wasserstein_distance(cur_values, ref_values, cur_weights, ref_weights)
                 / max(reference.std, MIN_NORM))


def jensen_shannon(reference: CategoricalSummary, current: CategoricalSummary) -> float:
    """Evidently's Jensen-Shannon distance (natural log) between the two counts of values."""
    keys = sorted(set(reference.counts) | set(current.counts))
    ref = np.array([reference.counts.get(k, 0) for k in keys], dtype="float64")
    cur = np.array([current.counts.get(k, 0) for k in keys], dtype="float64")
    return float(distance.jensenshannon(ref, cur))


def sketch_drift(contract: Contract, reference: Summary, current: Summary, drift: DriftSettings,
                 importances: dict[str, float] | None = None, top_k: int = 3) -> DriftResult:
    """Each model column's distance between the summaries, its threshold and verdict, and the window's
    share of drifted features against `drift.share_threshold`."""
    if not sketch_supported(drift):
        raise ValueError(f"drift: summaries measure {WASSERSTEIN} and {JENSEN_SHANNON} only, not "
                         f"{drift.num_method}/{drift.cat_method}; set CONTINUUM_DRIFT_NUM_METHOD={WASSERSTEIN} and "
                         f"CONTINUUM_DRIFT_CAT_METHOD={JENSEN_SHANNON}, or measure samples of the rows (measure_drift)")
    columns = list(contract.model_columns)
    for side, summary in (("reference", reference), ("current", current)):
        missing = [c for c in columns if c not in summary.numeric and c not in summary.categorical]
        if missing:
            raise ValueError(f"drift: the {side} summary lacks model columns {', '.join(missing)}; "
                             "summarize its rows again with this contract")
        empty = [c for c in columns if summary.count(c) == 0]
        if empty:
            raise ValueError(f"drift: feature {empty[0]!r} has no values in the {side} rows")
    fixed = {c: drift.num_threshold if c in reference.numeric else drift.cat_threshold for c in columns}
    thresholds = fixed
    if drift.calibrate:  # the fixed thresholds stay the floor: the smallest distance worth a retrain
        calibrated = calibrated_thresholds(reference, current, columns, drift.false_alarm_rate)
        thresholds = {c: max(calibrated[c], fixed[c]) for c in columns}
    importances = importances or {}
    features = []
    for name in columns:
        numeric = name in reference.numeric
        score = (wasserstein_norm(reference.numeric[name], current.numeric[name]) if numeric
                 else jensen_shannon(reference.categorical[name], current.categorical[name]))
        features.append(FeatureDrift(name=name, kind="numeric" if numeric else "categorical",
                                     method=WASSERSTEIN if numeric else JENSEN_SHANNON,
                                     threshold=thresholds[name], score=score, drifted=score >= thresholds[name],
                                     importance=importances.get(name)))
    ranked = sorted((n for n in importances if n in columns), key=lambda n: -importances[n])
    return DriftResult(features=tuple(features), drift_share=sum(f.drifted for f in features) / len(features),
                       share_threshold=drift.share_threshold, reference_rows=reference.rows, current_rows=current.rows,
                       sample_cap=0, top_features=tuple(ranked[:top_k]), basis="sketch",
                       false_alarm_rate=drift.false_alarm_rate if drift.calibrate else None)


def frame_drift(contract: Contract, reference: pd.DataFrame, current: pd.DataFrame, drift: DriftSettings,
                importances: dict[str, float] | None = None) -> DriftResult:
    """The monitor's verdict on frames held in memory (model columns, as `model_frame` gives them): from
    their summaries, or from samples of them for methods the summaries cannot measure."""
    if sketch_supported(drift):
        return sketch_drift(contract, Summary.of(contract, reference), Summary.of(contract, current), drift, importances)
    return measure_drift(contract, reference, current, drift, importances)
