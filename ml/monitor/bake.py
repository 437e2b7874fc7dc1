"""The bake check: is a champion on probation worse than the one it replaced, on the same events?

    verdict = champion_bake(lake, contract, settings.monitor.bake, model, version, end)   # None: not on probation
    verdict["rollback"], verdict["test"]["upper"], verdict["note"]

While a new champion is on probation (`ml.registry.history.probation`), the sidecar's shadow scores
the previous champion, so every event of the bake window has both models' scores. Once its label has
matured, an event is a pair: (label, champion's score, previous champion's score). The champion is
rolled back when the paired test says, with the configured confidence, that its ROC AUC is lower than
the previous one's by more than the margin.

The test is DeLong's for two correlated ROC AUCs (DeLong, DeLong & Clarke-Pearson 1988), computed with
midranks (Sun & Xu 2014): it is exact for scores of the same events (the pairing removes the variance
the two models share), deterministic (a rerun or a backfill of a window takes the same decision, and a
test at an edge stays at it), and costs one sort per model, where a paired bootstrap needs thousands of
resamples and a seed. The decision is one-sided: roll back when the upper confidence bound of
AUC(champion) - AUC(previous) is below -margin. A bake window is checked every hour, so its error
budget (1 - confidence) is split evenly between its hourly checks (Bonferroni): a good champion is
rolled back with probability at most 1 - confidence over its whole bake window.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm, rankdata

from ml.audit import read_records
from ml.contract import Contract
from ml.lake import Lake
from ml.lake.window import HOUR, Window
from ml.monitor.live import of_version, read_hours
from ml.registry.history import ChampionTimeline, Probation, probation
from ml.settings import BakeSettings

SHADOW = "predictions_shadow"  # the lake kind of the shadow's predictions


@dataclass(frozen=True)
class PairedAuc:
    """The paired test's figures: each model's AUC, their difference, its standard error, the one-sided
    upper confidence bound, the p-value of "not worse by more than the margin", and the verdict."""

    pairs: int
    positives: int
    auc_new: float
    auc_old: float
    diff: float
    se: float
    upper: float
    margin: float
    alpha: float
    p_value: float
    worse: bool

    def to_dict(self) -> dict:
        return asdict(self)


def delong(y: np.ndarray, new: np.ndarray, old: np.ndarray) -> tuple[float, float, float]:
    """(AUC of `new`, AUC of `old`, variance of their difference) on the same events, labels `y` (0/1)."""
    y = np.asarray(y).astype(bool)
    m, n = int(y.sum()), int((~y).sum())
    aucs, v10, v01 = [], [], []
    for scores in (np.asarray(new, dtype=float), np.asarray(old, dtype=float)):
        pos, neg = scores[y], scores[~y]
        both = rankdata(np.concatenate([pos, neg]))
        tx, ty = rankdata(pos), rankdata(neg)
        aucs.append((both[:m].sum() - m * (m + 1) / 2) / (m * n))
        v10.append((both[:m] - tx) / n)  # per positive: the share of negatives it outranks (ties count half)
        v01.append(1.0 - (both[m:] - ty) / m)  # per negative: the share of positives that outrank it
    s10, s01 = np.cov(np.vstack(v10)), np.cov(np.vstack(v01))
    cov = s10 / m + s01 / n
    return float(aucs[0]), float(aucs[1]), float(max(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], 0.0))


def paired_auc_test(y: np.ndarray, new: np.ndarray, old: np.ndarray, margin: float, alpha: float) -> PairedAuc:
    """Whether `new` is worse than `old` by more than `margin` in ROC AUC on the same events: DeLong's
    variance, one-sided at level `alpha` (worse when the upper bound of the difference is below -margin).
    Needs both classes, at least two of each."""
    y = np.asarray(y).astype(int)
    positives = int(y.sum())
    if positives < 2 or len(y) - positives < 2:
        raise ValueError(f"the paired test needs at least two events of each class; got {positives} of "
                         f"{len(y)} labelled 1")
    auc_new, auc_old, var = delong(y, new, old)
    diff, se = auc_new - auc_old, math.sqrt(var)
    upper = diff + float(norm.ppf(1 - alpha)) * se
    p_value = float(norm.cdf((diff + margin) / se)) if se > 0 else float(diff + margin >= 0)
    return PairedAuc(len(y), positives, auc_new, auc_old, diff, se, upper, margin, alpha, p_value,
                     worse=bool(upper < -margin))


def check_alpha(bake: BakeSettings) -> float:
    """The level of one hourly check: the bake window's error budget split between its checks."""
    return (1.0 - bake.confidence) / max(1, math.ceil(bake.hours))


def judge_pairs(pairs: pd.DataFrame, probation: Probation, bake: BakeSettings, label: str) -> dict:
    """The bake verdict on matured pairs (columns `label`, `score_new`, `score_old`): judged only with
    `bake.min_labels` pairs holding both classes; pure, so a backtest judges by the same rule."""
    base = {"probation": probation.to_dict(), "champion": probation.version, "previous": probation.previous,
            "pairs": len(pairs), "judged": False, "rollback": False, "test": None}
    y = pairs[label].astype(int).to_numpy() if len(pairs) else np.array([], dtype=int)
    if len(pairs) < bake.min_labels or y.min(initial=0) == y.max(initial=0):
        return {**base, "note": f"not judged: {len(pairs)} matured events scored by v{probation.version} and "
                                f"shadowed by v{probation.previous} (need {bake.min_labels}, both classes)"}
    test = paired_auc_test(y, pairs["score_new"].to_numpy(), pairs["score_old"].to_numpy(), bake.auc_margin,
                           check_alpha(bake))
    verb = "worse" if test.worse else "not shown worse"
    note = (f"v{probation.version} {verb} than v{probation.previous} on {test.pairs} paired events: ROC AUC "
            f"{test.auc_new:.4f} vs {test.auc_old:.4f} ({test.diff:+.4f}, upper bound {test.upper:+.4f} "
            f"{'<' if test.worse else '>='} -margin {-bake.auc_margin:+.4f}, DeLong one-sided at {test.alpha:.2g})")
    return {**base, "judged": True, "rollback": test.worse, "test": test.to_dict(), "note": note}


def matured_pairs(lake: Lake, contract: Contract, probation: Probation, end) -> pd.DataFrame:
    """The events of the probation up to `end` that the champion served and the shadow scored with the
    previous champion, joined with their outcomes observed before `end`: event id, label, score_new, score_old."""
    label, event_id = contract.label, contract.event_id
    start = probation.since.replace(minute=0, second=0, microsecond=0)
    window = Window(start, max(end, start + HOUR))
    empty = pd.DataFrame({event_id: [], label.field: [], "score_new": [], "score_old": []})
    new = _scores(read_hours(lake, contract, "predictions", window), probation.version, event_id)
    old = _scores(read_hours(lake, contract, SHADOW, window), probation.previous, event_id)
    if new.empty or old.empty:
        return empty
    outcomes = read_hours(lake, contract, "outcomes", window)
    if outcomes.empty:
        return empty
    outcomes = outcomes.loc[pd.to_datetime(outcomes[label.observed_at], utc=True) < pd.Timestamp(end)]
    outcomes = outcomes[[label.join_key, label.field]].drop_duplicates(label.join_key, keep="last")
    pairs = new.rename("score_new").to_frame().join(old.rename("score_old"), how="inner").reset_index()
    return pairs.merge(outcomes, left_on=event_id, right_on=label.join_key, how="inner")[
        [event_id, label.field, "score_new", "score_old"]]


def _scores(preds: pd.DataFrame, version: str, event_id: str) -> pd.Series:
    """`version`'s latest score per event id."""
    if preds.empty:
        return pd.Series(dtype=float)
    mine = of_version(preds.assign(model_version=preds["model_version"].astype(str)), version)
    return mine.drop_duplicates(event_id, keep="last").set_index(event_id)["score"].astype(float)


def bake_verdict(lake: Lake, contract: Contract, bake: BakeSettings, end, probation: Probation | None) -> dict | None:
    """The bake verdict of the window ending at `end` for a champion on `probation` (None when it is not)."""
    if probation is None:
        return None
    return judge_pairs(matured_pairs(lake, contract, probation, end), probation, bake, contract.label.field)


def champion_bake(lake: Lake, contract: Contract, bake: BakeSettings, model: str, version: str, end) -> dict | None:
    """The bake verdict of champion `version` at `end`, when the move that made it champion (from the
    audit trail) still has it on probation; None when the bake window is off or over, or when the
    champion at `end` was another version (a backfill of a window before a later move)."""
    if bake.hours <= 0:
        return None
    records, _ = read_records(lake)
    timeline = ChampionTimeline.from_records(records, model)
    if timeline.at(end) != str(version):
        return None
    return bake_verdict(lake, contract, bake, end, probation(timeline.move_at(end, records), end, bake.hours))
