"""A mergeable summary of telemetry rows: what the drift check needs of them, in a few kilobytes.

Per numeric model column: its finite values themselves while there are at most EXACT_MAX of them, past
that an Apache DataSketches KLL quantile sketch (its quantile function, within a known rank error), and
the exact count, mean and sum of squared deviations of its finite values (the reference's standard
deviation norms the Wasserstein distance). A KLL sketch compacts at random, so two sketches of the same
rows differ a little; below EXACT_MAX a summary is exact, and so the same on every run: a window of a
few thousand rows, which sits nearest a threshold, is judged the same way by a rerun or a backfill. Per categorical model column: the
exact count of each value. Missing and infinite values are counted apart and left out, as the drift
tests leave them out. Summaries of hours merge into the summary of their window, so the check's cost
grows with the number of hours, not rows:

    hour = Summary.of(contract, model_frame(contract, rows))
    window = Summary.merged([hour_a, hour_b])
    Summary.from_dict(json.loads(text))    # as `to_dict` stored it
"""

from __future__ import annotations

import base64
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from datasketches import kll_doubles_sketch

from ml.contract import Contract

KLL_K = 1000  # normalized rank error about 0.25% (measured effect on the distances: tests/unit/drift)
EXACT_MAX = 16_384  # values a column keeps exactly (128 KiB) before it becomes a sketch
FORMAT = 1


@dataclass
class NumericSummary:
    """One numeric column: its values (at most EXACT_MAX) or their KLL sketch, and their exact moments."""

    sketch: kll_doubles_sketch | None = None  # None while the values are kept exactly
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    missing: int = 0
    exact: np.ndarray = field(default_factory=lambda: np.empty(0, dtype="float64"))
    _sorted: np.ndarray | None = field(default=None, repr=False, compare=False)  # `exact` sorted, once asked for

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype="float64")
        finite = values[np.isfinite(values)]
        self.missing += len(values) - len(finite)
        if len(finite):
            self._absorb(finite)
            self._combine(len(finite), float(finite.mean()), float(((finite - finite.mean()) ** 2).sum()))

    def merge(self, other: "NumericSummary") -> None:
        if other.sketch is None:
            self._absorb(other.exact)
        else:
            self._sketched().merge(other.sketch)
        self.missing += other.missing
        self._combine(other.count, other.mean, other.m2)

    def _absorb(self, finite: np.ndarray) -> None:
        """Keep the values exactly while the column holds at most EXACT_MAX, else sketch them."""
        if self.sketch is None and len(self.exact) + len(finite) <= EXACT_MAX:
            self.exact, self._sorted = np.concatenate([self.exact, finite]), None
        else:
            self._sketched().update(finite)

    def _sketched(self) -> kll_doubles_sketch:
        """The column's sketch, made from its exact values the first time it is needed."""
        if self.sketch is None:
            self.sketch = kll_doubles_sketch(KLL_K)
            if len(self.exact):
                self.sketch.update(self.exact)
            self.exact, self._sorted = np.empty(0, dtype="float64"), None
        return self.sketch

    def _combine(self, n: int, mean: float, m2: float) -> None:
        """Chan's parallel update of count, mean and squared deviations: exact whatever the split."""
        if not n:
            return
        total = self.count + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.count * n / total
        self.mean += delta * n / total
        self.count = total

    @property
    def std(self) -> float:
        """Population standard deviation (as numpy's default), 0 without values."""
        return math.sqrt(self.m2 / self.count) if self.count else 0.0

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        """The values kept, sorted, and the weight (rows) each stands for (1 for exact values)."""
        if self.sketch is None:
            values = self.sorted_exact()
            return values, np.ones(len(values))
        pairs = np.array(list(self.sketch), dtype="float64").reshape(-1, 2)
        order = np.argsort(pairs[:, 0], kind="stable")
        return pairs[order, 0], pairs[order, 1]

    def sorted_exact(self) -> np.ndarray:
        """The exact values in ascending order, sorted once until more are added."""
        if self._sorted is None:
            self._sorted = np.sort(self.exact, kind="stable")
        return self._sorted

    def rank(self, x: float) -> float:
        """The share of values at or below `x` (within the sketch's rank error once sketched)."""
        if self.sketch is None:
            return float((self.exact <= x).mean()) if len(self.exact) else 0.0
        return self.sketch.get_rank(x, inclusive=True)

    def to_dict(self) -> dict:
        kept = ({"values": base64.b64encode(self.sorted_exact().astype("<f8").tobytes()).decode("ascii")}
                if self.sketch is None else {"kll": base64.b64encode(self.sketch.serialize()).decode("ascii")})
        return {"count": self.count, "mean": self.mean, "m2": self.m2, "missing": self.missing, **kept}

    @classmethod
    def from_dict(cls, data: dict) -> "NumericSummary":
        moments = (int(data["count"]), float(data["mean"]), float(data["m2"]), int(data["missing"]))
        if "values" in data:
            values = np.frombuffer(base64.b64decode(data["values"]), dtype="<f8").copy()
            ordered = bool(np.all(values[:-1] <= values[1:]))  # as `to_dict` writes them: no sort needed
            return cls(None, *moments, exact=values, _sorted=values if ordered else None)
        return cls(kll_doubles_sketch.deserialize(base64.b64decode(data["kll"])), *moments)


@dataclass
class CategoricalSummary:
    """One categorical column: rows per value, and rows without one."""

    counts: Counter = field(default_factory=Counter)
    missing: int = 0

    def add(self, values: pd.Series) -> None:
        counts = pd.Series(values).value_counts(dropna=True)
        self.counts.update({str(k): int(v) for k, v in counts.items() if v})
        self.missing += int(pd.Series(values).isna().sum())

    def merge(self, other: "CategoricalSummary") -> None:
        self.counts.update(other.counts)
        self.missing += other.missing

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict:
        return {"counts": dict(sorted(self.counts.items())), "missing": self.missing}

    @classmethod
    def from_dict(cls, data: dict) -> "CategoricalSummary":
        return cls(Counter({str(k): int(v) for k, v in data["counts"].items()}), int(data["missing"]))


@dataclass
class Summary:
    """The summary of some rows: their number, and one summary per model column."""

    rows: int = 0
    numeric: dict[str, NumericSummary] = field(default_factory=dict)
    categorical: dict[str, CategoricalSummary] = field(default_factory=dict)

    @classmethod
    def empty(cls, contract: Contract) -> "Summary":
        categorical = {f.name for f in contract.features if f.kind == "categorical"}
        return cls(0, {c: NumericSummary() for c in contract.model_columns if c not in categorical},
                   {c: CategoricalSummary() for c in contract.model_columns if c in categorical})

    @classmethod
    def of(cls, contract: Contract, frame: pd.DataFrame) -> "Summary":
        """The summary of a frame of the contract's model columns (as `model_frame` gives them)."""
        out = cls.empty(contract)
        out.add(frame)
        return out

    def add(self, frame: pd.DataFrame) -> None:
        """Count more rows of the model columns in (a batch of an hour being summarized)."""
        missing = [c for c in [*self.numeric, *self.categorical] if c not in frame.columns]
        if missing:
            raise ValueError(f"summary: the frame lacks model columns {', '.join(missing)}")
        self.rows += len(frame)
        for name, column in self.numeric.items():
            column.add(frame[name].to_numpy(dtype="float64", na_value=np.nan))
        for name, column in self.categorical.items():
            column.add(frame[name])

    @classmethod
    def merged(cls, parts: list["Summary"]) -> "Summary":
        """One summary of every part's rows (the parts are left as they were)."""
        if not parts:
            raise ValueError("summary: nothing to merge")
        out = cls(0, {c: NumericSummary() for c in parts[0].numeric},
                  {c: CategoricalSummary() for c in parts[0].categorical})
        for part in parts:
            if set(part.numeric) != set(out.numeric) or set(part.categorical) != set(out.categorical):
                raise ValueError("summary: the parts summarize different columns; summarize them again with one contract")
            out.rows += part.rows
            for name, column in part.numeric.items():
                out.numeric[name].merge(column)
            for name, column in part.categorical.items():
                out.categorical[name].merge(column)
        return out

    def count(self, name: str) -> int:
        """Rows with a value (finite, not missing) in column `name`."""
        return (self.numeric.get(name) or self.categorical[name]).count

    def to_dict(self) -> dict:
        return {"format": FORMAT, "rows": self.rows, "numeric": {k: v.to_dict() for k, v in self.numeric.items()},
                "categorical": {k: v.to_dict() for k, v in self.categorical.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> "Summary":
        if data.get("format") != FORMAT:
            raise ValueError(f"summary: format {data.get('format')!r} is not {FORMAT}")
        return cls(int(data["rows"]), {k: NumericSummary.from_dict(v) for k, v in data["numeric"].items()},
                   {k: CategoricalSummary.from_dict(v) for k, v in data["categorical"].items()})
