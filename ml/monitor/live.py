"""Live performance: the champion's predictions joined with the late outcomes, judged only once mature.

A label arrives minutes to hours after its event, and not at random: how long it takes may depend on
the outcome itself. An AUC over whatever labels have arrived is biased toward the quick ones, so only
*mature* predictions count: those from hours that ended at least the contract's longest label delay
before `as_of`, when every label that will come has come. The live window is the `hours` most recent
mature hours; its coverage (labelled / predicted) says whether the labels actually came. The metrics are
computed only when enough of them did (`min_labels` and `min_coverage`), and only for the version that
serves now: right after a promotion the new champion has no mature hours yet, so it is not judged on
the old model's predictions. Every version that served in the window gets its own figures for the
record (`live_figures`): each is judged only on the events it scored.

Predictions are filed in the lake under their event's hour (the sidecar stamps each prediction with its
event's Kafka timestamp), so a window of predictions and the window of telemetry are the same events.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from ml.contract import Contract
from ml.evaluate import classification_metrics, figures_by_version
from ml.lake import Lake
from ml.lake.layout import manifest_key
from ml.lake.window import HOUR, Window
from ml.validation import read_hour


@dataclass(frozen=True)
class LiveMetrics:
    """One live window: its hours, how many predictions of the version and how many labels they got, and
    the metrics when they were judged (None otherwise, with `note` saying why)."""

    start: str
    end: str
    version: str | None
    predictions: int
    labels: int
    mature: int
    coverage: float
    judged: bool
    note: str
    roc_auc: float | None = None
    pr_auc: float | None = None
    precision: float | None = None
    recall: float | None = None
    positive_rate: float | None = None
    threshold: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def live_window(contract: Contract, end: datetime, hours: int) -> Window:
    """The `hours` latest whole hours whose labels have all had time to arrive by `end`."""
    delay = timedelta(hours=math.ceil(contract.label.max_delay_minutes / 60))
    last = end.replace(minute=0, second=0, microsecond=0) - delay
    return Window(last - hours * HOUR, last)


def read_hours(lake: Lake, contract: Contract, kind: str, window: Window) -> pd.DataFrame:
    """The rows of every offloaded hour of `kind` in the window; an hour whose files disagree with its
    manifest is left out."""
    frames = []
    for hour in window.hours():
        try:
            manifest = json.loads(lake.read_text(manifest_key(kind, hour)))
        except FileNotFoundError:
            continue
        df, problems = read_hour(lake, contract, kind, manifest)
        if not problems:
            frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def served_predictions(lake: Lake, contract: Contract, window: Window, labels_until: datetime,
                       observed_before: datetime | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every version's predictions for the events of `window` (one per event id and version, the latest)
    and those of them with an outcome in the lake's outcome hours up to `labels_until` (observed before
    `observed_before`, when given), joined by event id: (predictions, labelled). Each hour is read once."""
    label, event_id = contract.label, contract.event_id
    preds = read_hours(lake, contract, "predictions", window)
    if preds.empty:
        return preds, preds
    preds = preds.assign(model_version=preds["model_version"].astype(str))
    preds = preds.drop_duplicates([event_id, "model_version"], keep="last")
    outcomes = read_hours(lake, contract, "outcomes", Window(window.start, max(labels_until, window.start + HOUR)))
    if outcomes.empty:
        return preds, preds.iloc[:0].assign(**{label.field: pd.Series(dtype="int64")})
    if observed_before is not None:
        outcomes = outcomes.loc[pd.to_datetime(outcomes[label.observed_at], utc=True) < pd.Timestamp(observed_before)]
    outcomes = outcomes[[label.join_key, label.field]].drop_duplicates(label.join_key, keep="last")
    return preds, preds.merge(outcomes, left_on=event_id, right_on=label.join_key, how="inner")


def window_scores(lake: Lake, contract: Contract, window: Window, version: str | None) -> np.ndarray:
    """The scores `version` served for the events of `window` (the latest per event), labelled or not."""
    preds = read_hours(lake, contract, "predictions", window)
    if preds.empty:
        return np.array([], dtype=float)
    preds = of_version(preds.assign(model_version=preds["model_version"].astype(str)), version)
    return preds.drop_duplicates(contract.event_id, keep="last")["score"].to_numpy(dtype=float)


def of_version(frame: pd.DataFrame, version: str | None) -> pd.DataFrame:
    """The rows of `frame` (served predictions) that `version` scored."""
    return frame if frame.empty else frame[frame["model_version"] == str(version)]


def labelled_predictions(lake: Lake, contract: Contract, version: str | None, window: Window, labels_until: datetime,
                         observed_before: datetime | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`served_predictions` of `version` alone: (predictions, labelled)."""
    preds, joined = served_predictions(lake, contract, window, labels_until, observed_before)
    return of_version(preds, version), of_version(joined, version)


def live_metrics(lake: Lake, contract: Contract, end: datetime, hours: int, version: str | None, threshold: float,
                 min_labels: int, min_coverage: float) -> LiveMetrics:
    """The live window's figures for `version` as of `end` (outcomes observed before `end` count)."""
    return live_figures(lake, contract, end, hours, version, threshold, min_labels, min_coverage)[0]


def live_figures(lake: Lake, contract: Contract, end: datetime, hours: int, version: str | None, threshold: float,
                 min_labels: int, min_coverage: float) -> tuple[LiveMetrics, dict[str, dict], np.ndarray]:
    """The live window's figures as of `end`: `version`'s, judged (`judge_live`), every serving version's
    for the record (`figures_by_version`), and the scores `version` served in it, labelled or not (what
    `window_scores` gives), all from one read of the window's hours."""
    window = live_window(contract, end, hours)
    if version is None:
        return judge_live(window, None, threshold, pd.DataFrame(), None, contract.label.field, min_labels,
                          min_coverage), {}, np.array([], dtype=float)
    preds, joined = served_predictions(lake, contract, window, end.replace(minute=0, second=0, microsecond=0),
                                       observed_before=end)
    served = of_version(preds, version)
    live = judge_live(window, version, threshold, served, of_version(joined, version), contract.label.field,
                      min_labels, min_coverage)
    scores = served["score"].to_numpy(dtype=float) if len(served) else np.array([], dtype=float)
    return live, figures_by_version(preds, joined, contract.label.field), scores


def judge_live(window: Window, version: str | None, threshold: float, preds: pd.DataFrame,
               joined: pd.DataFrame | None, label: str, min_labels: int, min_coverage: float) -> LiveMetrics:
    """The live window's figures from `version`'s predictions in it (a `score` column) and those of them
    joined with a mature `label`: judged only with enough labels and coverage and both classes. Pure,
    so the backtest judges its served predictions by the same rule."""
    base = dict(start=window.start.isoformat(), end=window.end.isoformat(), version=version, threshold=threshold)
    if version is None or preds.empty:
        note = "no champion" if version is None else "no predictions offloaded for the live window"
        return LiveMetrics(predictions=0, labels=0, mature=0, coverage=0.0, judged=False, note=note, **base)
    n, labelled = len(preds), len(joined)
    coverage = labelled / n if n else 0.0
    counts = dict(predictions=n, labels=labelled, mature=labelled, coverage=round(coverage, 4))
    if labelled < min_labels or coverage < min_coverage:
        note = (f"not judged: {labelled} mature labels of {n} predictions of v{version} (coverage {coverage:.2f}); "
                f"need {min_labels} labels and coverage {min_coverage:.2f}")
        return LiveMetrics(judged=False, note=note, **counts, **base)
    y = joined[label].astype(int).to_numpy()
    if y.min() == y.max():
        return LiveMetrics(judged=False, note=f"not judged: all {labelled} labels are {y[0]}", **counts, **base)
    m = classification_metrics(y, joined["score"].to_numpy(dtype=float), threshold)
    return LiveMetrics(judged=True, note=f"judged on {labelled} mature labels", roc_auc=m["roc_auc"],
                       pr_auc=m["pr_auc"], precision=m["precision"], recall=m["recall"],
                       positive_rate=m["positive_rate"], **counts, **base)
