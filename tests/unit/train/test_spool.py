"""A window spooled hour by hour: the same rows, lineage and time split as the window read into one frame."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from ml.lake import Lake
from ml.settings import RetrainSettings
from ml.train import DatasetError, build_training_set, time_split
from ml.train.spool import HOLDOUT, TRAIN, VALID, Spool, spool_window, window_rows
from ml.train.streamed import fit_streamed
from tests.unit.train.window_lake import CONTRACT, write_window


@pytest.fixture(scope="module")
def window(tmp_path_factory):
    lake = Lake(str(tmp_path_factory.mktemp("spool") / "lake"))
    start, end = write_window(lake, hours=3, rate=0.5)
    return lake, start, end, end + timedelta(hours=8)


def test_the_spool_holds_the_in_memory_rows_labels_and_lineage(window, tmp_path):
    lake, start, end, as_of = window
    whole = build_training_set(lake, CONTRACT, start, end, as_of)
    spool = spool_window(lake, CONTRACT, start, end, as_of, tmp_path)
    rows = pd.concat([spool.read(i) for i in range(len(spool.files))], ignore_index=True)
    assert len(spool.files) == 3 and spool.rows == len(rows) == len(whole.frame)
    assert set(rows["event_id"]) == set(whole.frame["event_id"])
    labels = dict(zip(whole.frame["event_id"], whole.frame["failure"]))
    assert {e for e, y in zip(rows["event_id"], rows["failure"]) if labels[e] != y} == set()
    assert spool.data_hash == whole.data_hash and window_rows(lake, start, end) >= spool.rows


def test_labels_observed_after_as_of_are_left_out(window, tmp_path):
    lake, start, end, _ = window
    early = end + timedelta(minutes=30)
    whole = build_training_set(lake, CONTRACT, start, end, early)
    spool = spool_window(lake, CONTRACT, start, end, early, tmp_path)
    assert 0 < spool.rows == len(whole.frame) < window_rows(lake, start, end)


def _spool(folder, frame: pd.DataFrame, bounds: list[int]) -> Spool:
    """A spool of `frame` cut into files at the given row positions, each file sorted by time and id."""
    spool = Spool(pd.DataFrame(), folder=folder)
    for i, (a, b) in enumerate(zip([0, *bounds], [*bounds, len(frame)])):
        part = frame.iloc[a:b].sort_values(["ts", "event_id"])
        spool.files.append(folder / f"{i}.parquet")
        part.to_parquet(spool.files[-1], index=False)
        spool.ts.append(part["ts"].to_numpy())
        spool.labels.append(part["failure"].to_numpy(dtype="int8"))
    return spool


def test_the_split_cuts_where_time_split_cuts_inside_groups_of_equal_times(tmp_path):
    rng = np.random.default_rng(3)
    ids = [f"e{v:04d}" for v in rng.permutation(100)]
    frame = pd.DataFrame({"ts": np.arange(100, dtype="int64") // 4, "event_id": ids, "failure": np.arange(100) % 2})
    frame = frame.sample(frac=1, random_state=1).reset_index(drop=True)  # files overlap in time
    spool = _spool(tmp_path, frame, [30, 70])
    spool.split(holdout_fraction=0.23, validation_fraction=0.10)  # cuts at rows 67 and 77: inside ties
    expected = time_split(frame.sort_values(["ts", "event_id"], ignore_index=True), 0.23, 0.10)
    for part, rows in ((TRAIN, expected.train), (VALID, expected.valid), (HOLDOUT, expected.holdout)):
        got = {e for i in range(3) for e in spool.read(i)["event_id"][spool.parts[i] == part]}
        assert got == set(rows["event_id"])
    assert (spool.count(TRAIN), spool.count(VALID), spool.count(HOLDOUT)) == (67, 10, 23)


def test_a_streamed_window_too_small_is_refused_naming_the_setting(window, tmp_path):
    lake, start, end, as_of = window
    spool = spool_window(lake, CONTRACT, start, end, as_of, tmp_path)
    with pytest.raises(DatasetError, match=rf"only {spool.rows} labelled rows.*RETRAIN_MIN_ROWS"):
        fit_streamed(CONTRACT, spool, RetrainSettings(min_rows=spool.rows + 1))
