"""A model must score the contract's canned batch before it may serve; the metrics read like Prometheus'."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from ml.serving.metrics import BatchHistogram
from ml.serving.model import ModelRefused, ServingModel, canned_frame, check_model
from tests.unit.serving.serving_models import CONTRACT, constant_booster


def test_canned_batch_stays_inside_the_contract():
    frame = canned_frame(CONTRACT)
    assert list(frame.columns) == CONTRACT.model_columns
    for feat in CONTRACT.numeric_features:
        assert frame[feat.name].between(feat.min, feat.max).all()


def test_a_model_for_the_contract_passes_its_check_and_comes_back_ready_to_serve():
    booster = constant_booster(0.3)
    model = check_model(ServingModel("m", "1", booster, threshold=0.7), CONTRACT)
    assert (model.name, model.version, model.booster, model.threshold) == ("m", "1", booster, 0.7)
    assert model.as_codes, "trained on the contract's categories, it scores category codes directly"
    frame = canned_frame(CONTRACT, 8)
    assert model.predict(frame) == pytest.approx([0.3] * 8)


@pytest.mark.parametrize("names, reason", [(None, "cannot score the canned batch"), (["a", "b", "c"], "expects features")])
def test_a_model_with_other_features_is_refused(names, reason):
    import xgboost as xgb

    data = xgb.DMatrix(np.random.rand(20, 3), label=[0, 1] * 10, feature_names=names)
    with pytest.raises(ModelRefused, match=reason):
        check_model(ServingModel("m", "2", xgb.train({"objective": "binary:logistic"}, data, 2), 0.5), CONTRACT)


def test_batch_histogram_exposes_the_same_text_as_a_prometheus_histogram():
    values = np.array([0.001, 0.02, 0.02, 0.3, 7.0, 99.0])
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    hist = BatchHistogram("lat_seconds", "latency", (0.01, 0.05, 0.5, 10.0))
    ours.register(hist)
    hist.observe_many(values[:2])
    hist.observe_many(values[2:])
    reference = Histogram("lat_seconds", "latency", buckets=(0.01, 0.05, 0.5, 10.0), registry=theirs)
    for v in values:
        reference.observe(v)
    strip = lambda text: [line for line in text.decode().splitlines() if "_created" not in line]  # noqa: E731
    assert strip(generate_latest(ours)) == strip(generate_latest(theirs))
