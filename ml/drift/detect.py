"""Drift of a window of telemetry against the champion's reference sample, per feature and overall.

With hundreds of thousands of rows a p-value test calls drift on differences nobody would act on, so
each feature is judged by a distance with a threshold instead: Evidently's normed Wasserstein distance
for numeric features and Jensen-Shannon distance for categorical ones by default (`DriftSettings` says which).
Each side is capped at `DriftSettings.sample_rows` rows drawn with a fixed seed: a distance measured on a
100,000-row sample differs from the full data's by far less than any threshold worth setting, and the
check then costs the same for an hour as for a day. The features the model leans on most are named,
so a person can tell drift that matters from drift in a feature the model hardly reads.

`detect_drift` also returns Evidently's report, which the monitor saves for a person to read; most of
its cost is drawing that report. `measure_drift` gives the same verdicts without it, from Evidently's
own statistical tests called as its per-column drift metric calls them, for work that only needs the
figures (the backtest measures hundreds of windows).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.legacy.core import ColumnType
from evidently.legacy.calculations.stattests import get_stattest
from evidently.presets import DataDriftPreset

from ml.contract import Contract, ContractError
from ml.settings import DriftSettings

SAMPLE_SEED = 20261122


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's verdict: the distance, how it was measured, the threshold and whether it drifted."""

    name: str
    kind: str
    method: str
    threshold: float
    score: float
    drifted: bool
    importance: float | None = None


@dataclass(frozen=True)
class DriftResult:
    """A window's drift: per feature, the share of features that drifted, and how that share compares to
    the policy's threshold; the model's most important features and which of them drifted. `basis` says
    what was measured: "sample" (rows, each side capped at `sample_cap`) or "sketch" (the summaries of
    every row, `ml.drift.sketch`); `false_alarm_rate` is set when the thresholds were calibrated."""

    features: tuple[FeatureDrift, ...]
    drift_share: float
    share_threshold: float
    reference_rows: int
    current_rows: int
    sample_cap: int
    top_features: tuple[str, ...] = ()
    basis: str = "sample"
    false_alarm_rate: float | None = None

    @property
    def drifted(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.drifted)

    @property
    def window_drifted(self) -> bool:
        """True when the share of drifted features is at or above the threshold (the policy's test, and where
        the Evidently report's own test of that share, "less than the threshold", fails)."""
        return self.drift_share >= self.share_threshold

    @property
    def top_drifted(self) -> tuple[str, ...]:
        return tuple(name for name in self.top_features if name in self.drifted)

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(drifted=list(self.drifted), window_drifted=self.window_drifted, top_drifted=list(self.top_drifted),
                   top_features=list(self.top_features), features=[asdict(f) for f in self.features])
        return out


def sample(frame: pd.DataFrame, rows: int, seed: int = SAMPLE_SEED) -> pd.DataFrame:
    """At most `rows` rows of a frame, drawn without replacement with a fixed seed (all of it if smaller)."""
    return frame if len(frame) <= rows else frame.sample(n=rows, random_state=seed)


def detect_drift(contract: Contract, reference: pd.DataFrame, current: pd.DataFrame, drift: DriftSettings,
                 importances: dict[str, float] | None = None, top_k: int = 3, thresholds: dict[str, float] | None = None):
    """Compare a window (the contract's model columns, as `model_frame` gives them) with the reference.

    `drift` says how features are measured and the share that makes the window drifted; `thresholds`
    (per column) replace its fixed ones, as the calibrated thresholds of the summaries' check do.
    Returns the `DriftResult` and Evidently's snapshot (its `save_html(path)` writes the report)."""
    columns, categorical, ref, cur = _sides(contract, reference, current, drift)
    definition = DataDefinition(numerical_columns=[c for c in columns if c not in categorical],
                                categorical_columns=categorical)
    preset = DataDriftPreset(columns=columns, num_method=drift.num_method, cat_method=drift.cat_method,
                             num_threshold=drift.num_threshold, cat_threshold=drift.cat_threshold,
                             drift_share=drift.share_threshold, per_column_threshold=thresholds)
    snapshot = Report([preset], include_tests=True).run(
        Dataset.from_pandas(cur, data_definition=definition), Dataset.from_pandas(ref, data_definition=definition))
    features = _features(snapshot, categorical, importances or {})
    return _result(features, columns, reference, current, drift, importances, top_k), snapshot


def measure_drift(contract: Contract, reference: pd.DataFrame, current: pd.DataFrame, drift: DriftSettings,
                  importances: dict[str, float] | None = None, top_k: int = 3) -> DriftResult:
    """`detect_drift`'s result without the report: each feature's distance and verdict from the
    statistical test Evidently's drift metric runs for that column (`drift`'s method and threshold for
    its kind), on the same samples with the same cleaning (infinities and missing values dropped)."""
    columns, categorical, ref, cur = _sides(contract, reference, current, drift)
    features = []
    for name in columns:
        kind = ColumnType.Categorical if name in categorical else ColumnType.Numerical
        method, threshold = ((drift.cat_method, drift.cat_threshold) if kind == ColumnType.Categorical
                             else (drift.num_method, drift.num_threshold))
        r, c = (side[name].replace([-np.inf, np.inf], np.nan).dropna() for side in (ref, cur))
        if r.empty or c.empty:
            raise ValueError(f"drift: feature {name!r} has no values in the {'reference' if r.empty else 'current'} rows")
        test = get_stattest(r, c, kind, method)
        outcome = test(r, c, kind, threshold)
        features.append(FeatureDrift(name=name, kind="categorical" if kind == ColumnType.Categorical else "numeric",
                                     method=method,
                                     threshold=float(threshold), score=float(outcome.drift_score),
                                     drifted=bool(outcome.drifted), importance=(importances or {}).get(name)))
    return _result(tuple(features), columns, reference, current, drift, importances, top_k)


def _sides(contract: Contract, reference: pd.DataFrame, current: pd.DataFrame, drift: DriftSettings):
    """The model columns, the categorical ones, and both sides checked and sampled."""
    columns = list(contract.model_columns)
    for side, frame in (("reference", reference), ("current", current)):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ContractError(f"drift: the {side} frame lacks model columns {', '.join(missing)}")
    if len(reference) == 0 or len(current) == 0:
        raise ValueError(f"drift: need rows on both sides (reference {len(reference)}, current {len(current)})")
    categorical = [f.name for f in contract.features if f.kind == "categorical"]
    return columns, categorical, sample(reference[columns], drift.sample_rows), sample(current[columns], drift.sample_rows)


def _result(features: tuple[FeatureDrift, ...], columns: list[str], reference: pd.DataFrame, current: pd.DataFrame,
            drift: DriftSettings, importances: dict[str, float] | None, top_k: int) -> DriftResult:
    ranked = sorted((name for name in importances or {} if name in columns), key=lambda n: -importances[n])
    share = sum(f.drifted for f in features) / len(features)
    return DriftResult(features=features, drift_share=share, share_threshold=drift.share_threshold,
                       reference_rows=len(reference), current_rows=len(current), sample_cap=drift.sample_rows,
                       top_features=tuple(ranked[:top_k]))


def _features(snapshot, categorical: list[str], importances: dict[str, float]) -> tuple[FeatureDrift, ...]:
    """Per-feature scores from the ValueDrift metrics and verdicts from their drift tests."""
    failed = {t.metric_config.params.get("column"): t.status.value == "FAIL"
              for t in snapshot.tests_results if t.id == "drift"}
    out = []
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type") != "evidently:metric_v2:ValueDrift":
            continue
        name = config["column"]
        out.append(FeatureDrift(name=name, kind="categorical" if name in categorical else "numeric",
                                method=config["method"], threshold=float(config["threshold"]),
                                score=float(metric["value"]), drifted=failed[name],
                                importance=importances.get(name)))
    return tuple(out)
