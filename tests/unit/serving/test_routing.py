"""A/B traffic splits: validated, normalised, by device (never by event), stable across replicas."""

from __future__ import annotations

import numpy as np
import pytest

from ml.serving.model import ServingModel
from ml.serving.routing import ServingState, TrafficError, device_bucket, parse_split, split_state

V1, V2 = ServingModel("m", "1", None, 0.5), ServingModel("m", "2", None, 0.5)


def test_split_is_normalised_and_sorted_by_version():
    assert parse_split({"10": 1, "9": 3}) == {"9": 0.75, "10": 0.25}
    assert parse_split(None) == {} and parse_split({}) == {}


@pytest.mark.parametrize("bad", [[1, 2], {"v1": 1.0}, {"1": 0}, {"1": -0.5}, {"1": "half"}, {"1": True}])
def test_bad_splits_are_refused_with_a_reason(bad):
    with pytest.raises(TrafficError, match="split"):
        parse_split(bad)


def test_without_a_split_the_champion_scores_everything():
    state = ServingState(V1)
    assert state.route(["dev-1", "dev-2"]) == [(V1, None)] and state.models == [V1]


def test_each_device_goes_to_one_version_in_proportion_to_the_weights():
    state = split_state(V1, {"1": V1, "2": V2}, parse_split({"1": 0.8, "2": 0.2}))
    devices = [f"dev-{i:04d}" for i in range(5000)]
    routes = state.route(devices + devices[:100])  # the same device twice: the same version
    rows = {model.version: set(pos.tolist()) for model, pos in routes}
    assert rows["1"].isdisjoint(rows["2"]) and len(rows["1"] | rows["2"]) == 5100
    assert 0.76 < len([r for r in rows["1"] if r < 5000]) / 5000 < 0.84
    for i in range(100):
        assert (i in rows["1"]) == (5000 + i in rows["1"])
    assert all(((device_bucket(d) < 0.8) == (i in rows["1"])) for i, d in enumerate(devices))


def test_device_bucket_is_stable_and_uniform():
    buckets = np.array([device_bucket(f"machine-{i}") for i in range(20_000)])
    assert device_bucket("machine-7") == device_bucket("machine-7") == buckets[7]
    assert buckets.min() >= 0 and buckets.max() < 1 and abs(buckets.mean() - 0.5) < 0.02
