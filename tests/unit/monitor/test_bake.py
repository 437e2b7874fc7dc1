"""The bake check, pure: DeLong's paired AUC test at its edge, the probation of a move, the hourly checks'
error budget, and the verdicts of 48 hourly windows after a good and after a shuffled-label promotion."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ml.monitor.bake import check_alpha, delong, judge_pairs, paired_auc_test
from ml.registry.history import Probation, probation
from ml.settings import BakeSettings

T0 = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
PROMOTION = {"type": "promotion", "model": "m", "alias": "champion", "from": "1", "to": "2", "at": T0.isoformat()}


def brute_delong(y, new, old) -> float:
    """DeLong's variance of the AUC difference from its definition: every positive against every negative."""
    pos, neg = y == 1, y == 0
    comps = []
    for s in (new, old):
        psi = (s[pos][:, None] > s[neg][None, :]) + 0.5 * (s[pos][:, None] == s[neg][None, :])
        comps.append((psi.mean(axis=1), psi.mean(axis=0)))
    s10 = np.cov(np.vstack([c[0] for c in comps]))
    s01 = np.cov(np.vstack([c[1] for c in comps]))
    cov = s10 / pos.sum() + s01 / neg.sum()
    return cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]


def paired(n: int, seed: int, noise_new: float, noise_old: float, ties: bool = False):
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < 0.3).astype(int)
    signal = y + rng.normal(0, 1, n)
    new, old = signal + rng.normal(0, noise_new, n), signal + rng.normal(0, noise_old, n)
    return (y, np.round(new, 1), np.round(old, 1)) if ties else (y, new, old)


def test_delong_gives_each_auc_and_the_variance_of_their_difference_with_ties():
    y, new, old = paired(300, 1, 0.5, 1.5, ties=True)
    auc_new, auc_old, var = delong(y, new, old)
    assert auc_new == pytest.approx(roc_auc_score(y, new)) and auc_old == pytest.approx(roc_auc_score(y, old))
    assert var == pytest.approx(brute_delong(y, new, old), rel=1e-9)


def test_worse_only_when_the_upper_bound_is_below_minus_the_margin_at_its_edge():
    y, new, old = paired(400, 2, 2.0, 0.3)
    base = paired_auc_test(y, new, old, margin=0.0, alpha=0.01)
    assert base.diff < 0 and base.upper < 0
    edge = -base.upper  # the margin at which the verdict turns
    inside = paired_auc_test(y, new, old, margin=edge - 1e-6, alpha=0.01)
    outside = paired_auc_test(y, new, old, margin=edge + 1e-6, alpha=0.01)
    assert inside.worse and inside.p_value < 0.01
    assert not outside.worse and outside.p_value > 0.01


def test_the_paired_test_needs_both_classes():
    with pytest.raises(ValueError, match="two events of each class"):
        paired_auc_test(np.array([0, 0, 0, 1]), np.arange(4.0), np.arange(4.0), 0.0, 0.05)


def test_the_bake_windows_error_budget_is_split_between_its_hourly_checks():
    assert check_alpha(BakeSettings(hours=24, confidence=0.95)) == pytest.approx(0.05 / 24)
    assert check_alpha(BakeSettings(hours=0.5, confidence=0.9)) == pytest.approx(0.1)


def test_a_promotion_is_on_probation_until_its_bake_window_ends():
    hours = 24.0
    end = T0 + timedelta(hours=hours)
    assert probation(PROMOTION, end - timedelta(seconds=1), hours) == Probation("2", "1", T0, end)
    assert probation(PROMOTION, end, hours) is None
    assert probation(PROMOTION, T0 - timedelta(seconds=1), hours) is None
    assert probation({**PROMOTION, "type": "rollback"}, T0, hours) is None  # back to a known model
    assert probation({**PROMOTION, "from": None}, T0, hours) is None  # the first champion: nothing to compare
    assert probation(PROMOTION, T0, 0) is None  # the bake window is off


def test_a_window_is_judged_only_with_enough_pairs():
    y, new, old = paired(200, 3, 0.5, 0.5)
    pairs = pd.DataFrame({"failure": y, "score_new": new, "score_old": old})
    bake = BakeSettings(min_labels=200)
    on = probation(PROMOTION, T0, 24)
    assert judge_pairs(pairs, on, bake, "failure")["judged"]
    short = judge_pairs(pairs.iloc[:199], on, bake, "failure")
    assert not short["judged"] and not short["rollback"] and "199 matured events" in short["note"]


def hourly_verdicts(events: pd.DataFrame, new_scores: np.ndarray, old_scores: np.ndarray,
                    bake: BakeSettings) -> list[dict]:
    """The verdict of each hourly window of the bake, on the events matured by its end (cumulative)."""
    on, out = probation(PROMOTION, T0, bake.hours), []
    frame = events.assign(score_new=new_scores, score_old=old_scores)
    for hour in range(1, 49):
        end = T0 + timedelta(hours=hour)
        matured = frame[frame["observed_at"] < end]
        out.append(judge_pairs(matured[["failure", "score_new", "score_old"]], on, bake, "failure"))
    return out


@pytest.fixture(scope="module")
def stream():
    """48 hours of events after the promotion, their labels observed 20 minutes to 3 hours later, and the
    scores of a model trained on the true labels, of a second one, and of one trained on shuffled labels."""
    import xgboost as xgb

    rng = np.random.default_rng(7)
    n, train = 48 * 60, 4000
    x = rng.normal(size=(n + train, 4))
    y = (rng.uniform(size=n + train) < 1 / (1 + np.exp(-(2 * x[:, 0] - x[:, 1] - 1.5)))).astype(int)

    def fit(labels, depth, rounds):
        return xgb.train({"objective": "binary:logistic", "max_depth": depth, "nthread": 1},
                         xgb.DMatrix(x[n:], label=labels), rounds).predict(xgb.DMatrix(x[:n]))

    ts = pd.Series([T0 + timedelta(minutes=i) for i in range(n)])
    observed = ts + pd.to_timedelta(rng.uniform(20, 180, n), unit="min")
    events = pd.DataFrame({"failure": y[:n], "observed_at": observed})
    return {"events": events, "good": fit(y[n:], 3, 30), "also_good": fit(y[n:], 2, 60),
            "shuffled": fit(rng.permutation(y[n:]), 3, 30)}


def test_a_good_promotion_is_not_rolled_back_in_48_hourly_windows(stream):
    verdicts = hourly_verdicts(stream["events"], stream["also_good"], stream["good"], BakeSettings(hours=48))
    judged = [v for v in verdicts if v["judged"]]
    assert len(judged) >= 40 and not any(v["rollback"] for v in verdicts)
    assert any(v["test"]["diff"] != 0 for v in judged)  # two different models, compared


def test_a_shuffled_label_promotion_is_rolled_back_within_its_bake_window(stream):
    bake = BakeSettings(hours=24)
    verdicts = hourly_verdicts(stream["events"], stream["shuffled"], stream["good"], bake)
    first = next(i for i, v in enumerate(verdicts) if v["rollback"])
    assert first + 1 < bake.hours  # the window ending `first + 1` hours after the promotion
    assert verdicts[first]["test"]["auc_new"] < verdicts[first]["test"]["auc_old"] - bake.auc_margin
