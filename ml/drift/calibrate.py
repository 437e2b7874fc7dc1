"""Per-feature drift thresholds calibrated on the champion's own reference, at the window's row count.

A distance between a window and the reference is never 0: two samples of one distribution differ, by
more the fewer rows they hold. So a fixed threshold is too strict for a small window (clean windows
alarm) and too lax for a large one (real drift hides under it). Here each feature's threshold is the
distance that clean data reaches with probability `rate / features` only: the reference's own
distribution stands in for clean data, and both sides are drawn from it at their real sizes (the
window's rows of that feature, and the reference's), `DRAWS` times:

- numeric (normed Wasserstein): the quantile functions of `n` and `m` draws from the reference's
  quantile function, on `GRID` levels. Draws of any size cost the same: the order statistics of `n`
  uniform draws at the grid's ranks are sums of exponential spacings, drawn as gamma variables;
- categorical (Jensen-Shannon): multinomial counts of `n` and `m` rows with the reference's shares.

The rule across features is Bonferroni: each feature alarms on clean data with probability at most
`rate / features`, so a clean window has any feature drifted with probability at most `rate` (and a
window drifted by the share rule, which needs several, far less), whatever the features' dependence.
The draws are seeded by the row counts: the same reference and row counts give the same thresholds.
Numeric draws are shared by windows of about the same size (`order_statistics`), so a monitor run of
many hourly windows draws them once.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.spatial import distance

from ml.drift.summary import CategoricalSummary, NumericSummary, Summary

DRAWS = 2000
GRID = 128
SEED = 20261122
LEVELS = 1 << 14  # rank resolution of the reference's tabulated quantile function
STEP = 1.025  # the grid of row counts whose draws are shared
MIN_NORM = 0.001  # as Evidently norms a Wasserstein distance: by the reference's std, at least this


def calibrated_thresholds(reference: Summary, current: Summary, columns: list[str], rate: float) -> dict[str, float]:
    """Each column's threshold: the `1 - rate / len(columns)` quantile of its distance between clean
    samples of the window's and the reference's row counts (`current.count(c)`, `reference.count(c)`).
    A column's threshold depends on its reference, the two row counts and the level only."""
    if not 0 < rate < 1:
        raise ValueError(f"calibration: the false-alarm rate must be in (0, 1), got {rate}")
    level = 1 - rate / len(columns)
    out = {}
    for name in columns:
        n, m = current.count(name), reference.count(name)
        if name in reference.numeric:
            null = numeric_null(reference.numeric[name], order_statistics(0, n), order_statistics(1, m))
        else:
            null = categorical_null(reference.categorical[name], n, m, np.random.default_rng([SEED, 2, n, m]))
        out[name] = float(np.quantile(null, level))
    return out


def order_statistics(side: int, n: int) -> np.ndarray:
    """The drawn order statistics of one side (0: window, 1: reference) of about `n` rows, as
    `level_index` positions. `n` is rounded to a geometric grid 2.5% apart (exact under 200 rows), so
    windows of about the same size share their draws (a threshold moves by well under 1% across one
    step of the grid); the draws are seeded by the side and the rounded count."""
    return _order_statistics(side, n if n < 200 else int(round(STEP ** round(math.log(n, STEP)))))


@lru_cache(maxsize=32)
def _order_statistics(side: int, n: int) -> np.ndarray:
    out = level_index(uniform_quantiles(np.random.default_rng([SEED, side, n]), n))
    out.flags.writeable = False
    return out


def uniform_quantiles(rng: np.random.Generator, n: int, draws: int = DRAWS, grid: int = GRID) -> np.ndarray:
    """`draws` rows of the empirical quantile function of `n` uniform draws at the grid's levels
    ((j + 0.5) / grid): the order statistic of rank ceil(n u), drawn as S_k / S_(n+1), where S_k is a sum
    of k standard exponentials, so its cost does not depend on `n`."""
    if n < 1:
        raise ValueError("calibration: a side without rows cannot be calibrated")
    ranks = np.clip(np.ceil(n * (np.arange(grid) + 0.5) / grid).astype("int64"), 1, n)
    steps = np.diff(ranks, prepend=0).astype("float64")
    sums = np.cumsum(rng.gamma(np.broadcast_to(steps, (draws, grid))), axis=1)
    total = sums[:, -1] + rng.gamma(float(n + 1 - ranks[-1]), size=draws)
    return sums / total[:, None]


def level_index(uniforms: np.ndarray) -> np.ndarray:
    """Uniform draws as positions in a quantile function tabulated at LEVELS ranks (`numeric_null`)."""
    return np.minimum((uniforms * LEVELS).astype(np.int16), LEVELS - 1)


def numeric_null(reference: NumericSummary, window: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Normed Wasserstein distances between clean draws of two sizes (`window`, `ref`: their uniform
    order statistics as `level_index` positions) mapped through the reference's quantile function."""
    values, weights = reference.items()
    cumulative = np.cumsum(weights) / weights.sum()
    # the quantile function tabulated at LEVELS ranks: a lookup per draw instead of a search
    table = values[np.minimum(np.searchsorted(cumulative, (np.arange(LEVELS) + 0.5) / LEVELS), len(values) - 1)]
    return np.abs(table[window] - table[ref]).mean(axis=1) / max(reference.std, MIN_NORM)


def categorical_null(reference: CategoricalSummary, n: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """Jensen-Shannon distances between clean counts of `n` and `m` rows with the reference's shares."""
    counts = np.array([c for c in reference.counts.values() if c > 0], dtype="float64")
    shares = counts / counts.sum()
    window, ref = rng.multinomial(n, shares, size=DRAWS), rng.multinomial(m, shares, size=DRAWS)
    return np.nan_to_num(distance.jensenshannon(window, ref, axis=1))
