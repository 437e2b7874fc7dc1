"""A window past `stream_rows` trains from the lake's hours through a data iterator, on external
memory, or on a Dask cluster, and its model judges the same holdout as the window read into memory."""

from __future__ import annotations

from datetime import timedelta

import pytest
import xgboost as xgb

from ml.lake import Lake
from ml.settings import RetrainSettings
from ml.train import retrain as retrain_module
from ml.train.retrain import RetrainRequest, _fit
from ml.train.spool import spool_window
from ml.train.streamed import fit_streamed
from ml.train.track import REFERENCE_ROWS
from tests.unit.train.window_lake import CONTRACT, write_window

QUICK = {"search_seconds": 0.001, "max_rounds": 30}  # the default trial only, on every path
AUC = "holdout_roc_auc"


@pytest.fixture(scope="module")
def lake_window(tmp_path_factory):
    lake = Lake(str(tmp_path_factory.mktemp("streamed") / "lake"))
    start, end = write_window(lake, hours=4, rate=0.6)
    return lake, RetrainRequest("manual", start, end, end + timedelta(hours=8))


@pytest.fixture(scope="module")
def in_memory(lake_window):
    lake, request = lake_window
    return _fit(lake, CONTRACT, RetrainSettings(**QUICK), request)


def _same_holdout(candidate, baseline):
    assert set(candidate.split.holdout["event_id"]) == set(baseline.split.holdout["event_id"])
    assert candidate.rows == baseline.rows and candidate.train_positives == baseline.train_positives


def test_a_window_past_stream_rows_is_streamed_and_judged_on_the_same_holdout(lake_window, in_memory, monkeypatch):
    lake, request = lake_window
    data, baseline = in_memory

    def whole_window(*args):
        raise AssertionError("a window past stream_rows was read into one frame")

    monkeypatch.setattr(retrain_module, "build_training_set", whole_window)
    streamed_data, streamed = _fit(lake, CONTRACT, RetrainSettings(stream_rows=1000, **QUICK), request)
    assert len(data.frame) == sum(baseline.rows.values())
    assert len(streamed_data.frame) == min(REFERENCE_ROWS, len(data.frame))  # the drift reference's sample
    assert streamed_data.data_hash == data.data_hash
    _same_holdout(streamed, baseline)
    assert abs(streamed.metrics[AUC] - baseline.metrics[AUC]) <= 0.005


def test_external_memory_keeps_the_binned_matrix_on_disk_and_learns_the_same(lake_window, in_memory, tmp_path,
                                                                           monkeypatch):
    lake, request = lake_window
    baseline = in_memory[1]
    built = []

    class Recorded(xgb.ExtMemQuantileDMatrix):  # the library's own matrix, noting each one built
        def __init__(self, data, **kwargs):
            built.append(data.cache_prefix)
            super().__init__(data, **kwargs)

    monkeypatch.setattr(xgb, "ExtMemQuantileDMatrix", Recorded)
    spool = spool_window(lake, CONTRACT, request.start, request.end, request.as_of, tmp_path)
    candidate = fit_streamed(CONTRACT, spool, RetrainSettings(stream_rows=1000, extmem_rows=1000, **QUICK))
    assert built == [str(tmp_path / "xgb-cache" / "train"), str(tmp_path / "xgb-cache" / "valid")]
    _same_holdout(candidate, baseline)
    assert abs(candidate.metrics[AUC] - baseline.metrics[AUC]) <= 0.005


def test_a_dask_cluster_of_two_workers_learns_the_same(lake_window, in_memory):
    from dask.distributed import Client, LocalCluster

    lake, request = lake_window
    baseline = in_memory[1]
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        retrain = RetrainSettings(stream_rows=1000, dask_scheduler=cluster.scheduler_address, **QUICK)
        _, candidate = _fit(lake, CONTRACT, retrain, request)
        with Client(cluster) as client:
            assert len(client.scheduler_info()["workers"]) == 2
    _same_holdout(candidate, baseline)
    assert abs(candidate.metrics[AUC] - baseline.metrics[AUC]) <= 0.005
