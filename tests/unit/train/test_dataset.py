"""The time-ordered split and the refusals when there is too little to learn from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.train import DatasetError, TrainingSet, check_split, time_split


def frame(n=1000, positives_every=10):
    return pd.DataFrame({"ts": pd.date_range("2026-11-20", periods=n, freq="s", tz="UTC"),
                         "failure": (np.arange(n) % positives_every == 0).astype(int)})


def test_the_holdout_is_the_most_recent_slice_and_nothing_overlaps():
    df = frame()
    split = time_split(df, holdout_fraction=0.2, validation_fraction=0.1)
    assert (len(split.train), len(split.valid), len(split.holdout)) == (700, 100, 200)
    assert split.train["ts"].max() < split.valid["ts"].min() <= split.valid["ts"].max() < split.holdout["ts"].min()
    assert split.holdout["ts"].max() == df["ts"].max()


def test_enough_rows_of_both_classes_pass():
    check_split(time_split(frame(), 0.2, 0.1), "failure", min_rows=500, min_per_class=20)


def test_too_few_rows_are_refused_naming_the_setting():
    with pytest.raises(DatasetError, match=r"only 1000 labelled rows.*at least 5000.*RETRAIN_MIN_ROWS"):
        check_split(time_split(frame(), 0.2, 0.1), "failure", min_rows=5000, min_per_class=1)


def test_one_class_only_is_refused():
    with pytest.raises(DatasetError, match="0 failures and 700 non-failures"):
        check_split(time_split(frame(positives_every=10**9 + 1).assign(failure=0), 0.2, 0.1), "failure", 10, 1)


def test_a_holdout_without_failures_is_refused():
    df = frame()
    df.loc[800:, "failure"] = 0
    with pytest.raises(DatasetError, match="holdout rows hold labels \\[0\\] only"):
        check_split(time_split(df, 0.2, 0.1), "failure", 10, 1)


def test_the_data_hash_depends_on_the_hours_and_their_content_only():
    hours = [{"topic": "telemetry", "hour": "2026-11-20T10:00:00+00:00", "content_sha256": "a"},
             {"topic": "outcomes", "hour": "2026-11-20T10:00:00+00:00", "content_sha256": "b"}]
    a, b = TrainingSet(pd.DataFrame(), hours), TrainingSet(pd.DataFrame(), list(reversed(hours)))
    assert a.data_hash == b.data_hash
    changed = TrainingSet(pd.DataFrame(), [hours[0], {**hours[1], "content_sha256": "c"}])
    assert changed.data_hash != a.data_hash
