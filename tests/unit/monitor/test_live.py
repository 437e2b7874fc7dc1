"""Live metrics per serving version: each version is judged on the events it served itself, the
decision rests on the champion's figures alone, and a version whose labels hold one class has no AUC."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ml.lake import Lake
from ml.lake.window import Window
from ml.monitor.live import live_figures, live_window, of_version, served_predictions, window_scores
from tests.unit.lake_hours import CONTRACT, THRESHOLD, observed, served

START = datetime(2026, 11, 22, tzinfo=timezone.utc)
H = timedelta(hours=1)
END = START + 10 * H  # the contract's labels take up to 6 h: the live window of 2 h is [START+2h, START+4h)
V1 = [("a0", "1", 0.9), ("a1", "1", 0.8), ("a2", "1", 0.2), ("a3", "1", 0.1), ("a4", "1", 0.7), ("a5", "1", 0.3)]
V2 = [("b0", "2", 0.6), ("b1", "2", 0.4), ("b2", "2", 0.55), ("b3", "2", 0.1), ("b4", "2", 0.3),
      ("b0", "2", 0.6)]  # b0 delivered twice
V3 = [("c0", "3", 0.7), ("c1", "3", 0.2)]
LABELS = {"a0": 1, "a1": 0, "a2": 0, "a3": 0, "a4": 1, "a5": 0, "b0": 1, "b1": 0, "b2": 1, "b3": 0,
          "c0": 0, "c1": 0}  # b4 not labelled yet


@pytest.fixture
def lake(tmp_path) -> Lake:
    lake = Lake(str(tmp_path / "lake"))
    served(lake, START + 2 * H, V1)
    served(lake, START + 3 * H, V2 + V3)
    observed(lake, START + 4 * H, LABELS)
    return lake


def figures(lake: Lake, champion: str = "2", min_labels: int = 4, min_coverage: float = 0.8):
    """The champion's judged figures and every version's, as the monitor records them."""
    return live_figures(lake, CONTRACT, END, 2, champion, THRESHOLD, min_labels, min_coverage)[:2]


def test_every_version_is_judged_on_the_events_it_served(lake):
    assert live_window(CONTRACT, END, 2) == Window(START + 2 * H, START + 4 * H)
    preds, labelled = served_predictions(lake, CONTRACT, live_window(CONTRACT, END, 2), END)
    assert {v: set(of_version(preds, v)["event_id"]) for v in ("1", "2", "3")} == {
        "1": {e for e, _, _ in V1}, "2": {"b0", "b1", "b2", "b3", "b4"}, "3": {"c0", "c1"}}
    assert set(of_version(labelled, "2")["event_id"]) == {"b0", "b1", "b2", "b3"}
    _, by_version = figures(lake)
    assert by_version == {
        "1": {"predictions": 6, "labels": 6, "coverage": 1.0, "accuracy": 0.8333, "roc_auc": 0.875},
        "2": {"predictions": 5, "labels": 4, "coverage": 0.8, "accuracy": 1.0, "roc_auc": 1.0},
        "3": {"predictions": 2, "labels": 2, "coverage": 1.0, "accuracy": 0.5, "roc_auc": None}}


def test_the_decision_rests_on_the_champion_s_figures_alone_at_the_edge_of_its_thresholds(lake):
    live, _ = figures(lake)
    assert live.judged and live.version == "2" and (live.predictions, live.labels) == (5, 4)
    assert live.roc_auc == 1.0 and live.coverage == 0.8
    assert not figures(lake, min_labels=5)[0].judged  # 4 labels of v2, though the window holds 12
    assert not figures(lake, min_coverage=0.81)[0].judged
    assert figures(lake, champion="1")[0].roc_auc == 0.875


def test_a_champion_whose_labels_hold_one_class_is_not_judged_and_none_is_asked_without_one(lake):
    live, by_version = figures(lake, champion="3", min_labels=2)
    assert not live.judged and live.roc_auc is None and "all 2 labels are 0" in live.note
    assert by_version["3"]["roc_auc"] is None
    live, by_version = figures(lake, champion=None)
    assert not live.judged and live.note == "no champion" and by_version == {}


def test_a_window_s_scores_are_the_version_s_latest_per_event_labelled_or_not(lake):
    window = Window(START + 2 * H, START + 4 * H)
    assert sorted(window_scores(lake, CONTRACT, window, "2")) == [0.1, 0.3, 0.4, 0.55, 0.6]  # b0 once, b4 unlabelled
    assert sorted(window_scores(lake, CONTRACT, Window(START + 2 * H, START + 3 * H), "1")) == [
        0.1, 0.2, 0.3, 0.7, 0.8, 0.9]
    assert len(window_scores(lake, CONTRACT, Window(START + 5 * H, START + 6 * H), "2")) == 0
    # the live figures' read gives the same scores of the live window, for the estimate on it
    assert sorted(live_figures(lake, CONTRACT, END, 2, "2", THRESHOLD, 4, 0.8)[2]) == [0.1, 0.3, 0.4, 0.55, 0.6]
    assert len(live_figures(lake, CONTRACT, END, 2, None, THRESHOLD, 4, 0.8)[2]) == 0
