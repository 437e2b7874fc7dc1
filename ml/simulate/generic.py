"""Events for any contract: values inside the declared ranges, a label from a fixed rule on the features.

This is what lets the pipeline be tested on a stream it was not written for. Numeric features are
normal around the middle of their range (an eighth of the range per standard deviation), categorical
features uniform over their allowed values except the last, which only covariate drift uses. The
label is 1 when the standardized numeric features sum high: about 4% of events. Concept drift flips
that rule's sign, so the features stay the same and their relationship to the label changes.
"""

from __future__ import annotations

import numpy as np

from ml.contract import Contract, Feature
from ml.simulate.scenarios import ConceptDrift, CovariateDrift, Scenario

LABEL_THRESHOLD = 1.75  # a standard normal exceeds it about 4% of the time
PASSTHROUGH_VALUES = 3


def _bounds(feat: Feature) -> tuple[float, float]:
    lo = feat.min if feat.min is not None else (feat.max - 100.0 if feat.max is not None else 0.0)
    hi = feat.max if feat.max is not None else lo + 100.0
    return lo, hi


class GenericGenerator:
    """A fleet of anonymous devices emitting contract-shaped events."""

    def __init__(self, contract: Contract, devices: int, seed: int, scenarios: tuple[Scenario, ...] = ()) -> None:
        rng = np.random.default_rng([seed, 0])
        self.contract, self.scenarios = contract, scenarios
        self.fleet_ids = tuple(f"dev-{i:04d}" for i in range(devices))
        self.drift_draw = rng.uniform(size=devices)
        self.vocab: dict[str, tuple[str, ...]] = {f.name: f.allowed for f in contract.categorical_features}
        for name in contract.passthrough:
            self.vocab[name] = tuple(f"{name}-{i}" for i in range(PASSTHROUGH_VALUES))
        self._device_pass = np.arange(devices) % PASSTHROUGH_VALUES

    def generate(self, ts_ms: np.ndarray, device: np.ndarray,
                 rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Feature columns (numeric float64, categorical int16 codes) and the 0/1 label."""
        n, c = len(ts_ms), self.contract
        noise = rng.standard_normal((len(c.features), n))
        uniform = rng.random((len(c.features), n))
        shifted = np.zeros(n, dtype=bool)
        for s in self.scenarios:
            if isinstance(s, CovariateDrift):
                shifted |= s.active(ts_ms) & (self.drift_draw[device] < s.share)
        columns: dict[str, np.ndarray] = {}
        score = np.zeros(n)
        numeric = 0
        for i, feat in enumerate(c.features):
            if feat.kind == "categorical":
                k = len(feat.allowed)
                usual = max(k - 1, 1)
                codes = np.minimum((uniform[i] * usual).astype(np.int16), usual - 1)
                codes[shifted] = k - 1
                columns[feat.name] = codes
                continue
            lo, hi = _bounds(feat)
            z = noise[i] + np.where(shifted, 1.0, 0.0)
            values = np.round(np.clip((lo + hi) / 2 + z * (hi - lo) / 8, lo, hi), 3)
            score += (values - (lo + hi) / 2) / ((hi - lo) / 8)  # the rule reads the reported value
            numeric += 1
            if feat.nullable:
                values[uniform[i] < feat.max_null_rate / 4] = np.nan
            columns[feat.name] = values
        for name in c.passthrough:
            columns[name] = self._device_pass[device].astype(np.int16)
        score /= np.sqrt(max(numeric, 1))
        for s in self.scenarios:
            if isinstance(s, ConceptDrift):
                hit = s.active(ts_ms) & (self.drift_draw[device] < s.share)
                score[hit] = -score[hit]
        return columns, (score > LABEL_THRESHOLD).astype(np.int8)
