"""Calibrated thresholds: the drawn null matches brute-force samples, shrinks with the window, is Bonferroni."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from ml.contract import load_contract
from ml.drift.calibrate import (calibrated_thresholds, categorical_null, level_index, numeric_null,
                                 uniform_quantiles)
from ml.drift.summary import CategoricalSummary, NumericSummary, Summary

CONTRACT = load_contract("machine_telemetry")


@pytest.fixture(scope="module")
def skewed() -> np.ndarray:
    """A reference column that is not normal: a mixture with a long right tail, as machine readings are."""
    rng = np.random.default_rng(1)
    return np.concatenate([rng.normal(300, 2, 1800), rng.gamma(2.0, 3.0, 700) + 304])


def test_the_drawn_null_matches_distances_between_real_samples(skewed):
    reference = NumericSummary()
    reference.add(skewed)
    n, m, rng = 1000, len(skewed), np.random.default_rng(2)
    drawn = numeric_null(reference, level_index(uniform_quantiles(rng, n)), level_index(uniform_quantiles(rng, m)))
    brute = np.array([stats.wasserstein_distance(rng.choice(skewed, n), rng.choice(skewed, m))
                      for _ in range(1500)]) / skewed.std()
    for q in (0.5, 0.9, 0.99):
        assert np.quantile(drawn, q) == pytest.approx(np.quantile(brute, q), rel=0.08), q


def test_the_categorical_null_matches_jensen_shannon_between_real_counts():
    reference = CategoricalSummary()
    reference.add(pd.Series(["a"] * 500 + ["b"] * 300 + ["c"] * 200))
    rng = np.random.default_rng(3)
    drawn = categorical_null(reference, 400, 1000, rng)
    shares = np.array([0.5, 0.3, 0.2])
    brute = [distance.jensenshannon(rng.multinomial(400, shares), rng.multinomial(1000, shares)) for _ in range(2000)]
    assert np.quantile(drawn, 0.95) == pytest.approx(np.quantile(brute, 0.95), rel=0.08)


def _summary(rows: int, seed: int) -> Summary:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.normal(0, 1, rows) for c in CONTRACT.model_columns})
    for name in ("device_type", "site"):
        frame[name] = pd.Categorical(rng.choice(["a", "b", "c"], rows, p=[0.5, 0.3, 0.2]))
    return Summary.of(CONTRACT, frame)


def test_thresholds_shrink_with_the_window_until_the_reference_size_bounds_them():
    reference = _summary(2500, 4)
    columns = CONTRACT.model_columns
    by_size = {n: calibrated_thresholds(reference, _summary(n, 5), columns, 0.01) for n in (1000, 10_000, 100_000)}
    for name in columns:
        small, mid, large = (by_size[n][name] for n in (1000, 10_000, 100_000))
        assert small > mid > large, name
        # the reference's own 2,500 rows keep the noise floor: sqrt(1/n + 1/m) from 10k to 100k rows
        assert large / mid == pytest.approx(np.sqrt((1 / 100_000 + 1 / 2500) / (1 / 10_000 + 1 / 2500)), rel=0.12)


def test_the_rate_is_shared_across_features_bonferroni():
    reference, current = _summary(3000, 8), _summary(2000, 9)
    every = calibrated_thresholds(reference, current, CONTRACT.model_columns, 0.05)
    for name in ("torque_nm", "site"):  # each feature alone at the rate divided by the number of features
        alone = calibrated_thresholds(reference, current, [name], 0.05 / len(CONTRACT.model_columns))
        assert alone[name] == every[name]


def test_a_lower_false_alarm_rate_raises_every_threshold_and_bad_rates_are_refused():
    reference, current = _summary(3000, 6), _summary(3000, 7)
    loose = calibrated_thresholds(reference, current, CONTRACT.model_columns, 0.2)
    strict = calibrated_thresholds(reference, current, CONTRACT.model_columns, 0.002)
    assert all(strict[c] > loose[c] for c in CONTRACT.model_columns)
    assert calibrated_thresholds(reference, current, CONTRACT.model_columns, 0.2) == loose  # a fixed seed
    for rate in (0, 1):
        with pytest.raises(ValueError, match=r"false-alarm rate must be in \(0, 1\)"):
            calibrated_thresholds(reference, current, CONTRACT.model_columns, rate)
