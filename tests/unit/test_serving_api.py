"""POST /predict: the same model and features as the stream, and a clear 4xx for a bad body."""

from __future__ import annotations

import orjson
import pytest

from ml.contract import load_contract
from ml.serving.api import MAX_EVENTS, RequestError, predict_request
from ml.serving.model import ServingModel
from ml.serving.routing import ServingState
from tests.unit.serving_models import EVENT, constant_booster

CONTRACT = load_contract("machine_telemetry")


@pytest.fixture(scope="module")
def state():
    return ServingState(ServingModel("m", "3", constant_booster(0.8), threshold=0.7))


def test_one_event_or_a_list_is_scored_with_the_version_and_decision(state):
    for body in (EVENT, [EVENT, {**EVENT, "event_id": "e2"}], {"events": [EVENT]}):
        answer = predict_request(CONTRACT, state, orjson.dumps(body))["predictions"]
        assert answer[0]["event_id"] == "e1" and answer[0]["model_version"] == "3"
        assert answer[0]["score"] == pytest.approx(0.8, abs=1e-6) and answer[0]["decision"] == "alert"


@pytest.mark.parametrize("body, status, text", [
    (b"{nope", 400, "not JSON"),
    (b"[]", 400, "non-empty"),
    (b"42", 400, "expected an event"),
    (orjson.dumps([EVENT, 7]), 400, "JSON objects"),
    (orjson.dumps({**EVENT, "torque_nm": 912.0}), 400, "break the contract"),
    (orjson.dumps([EVENT] * (MAX_EVENTS + 1)), 413, "at most"),
])
def test_bad_bodies_get_a_4xx_naming_the_problem(state, body, status, text):
    with pytest.raises(RequestError) as err:
        predict_request(CONTRACT, state, body)
    assert err.value.status == status and text in err.value.body["error"]


def test_contract_rejects_name_the_event_and_the_field(state):
    with pytest.raises(RequestError) as err:
        predict_request(CONTRACT, state, orjson.dumps([EVENT, {**EVENT, "torque_nm": "x"}, {"event_id": "e3"}]))
    rejects = err.value.body["rejects"]
    assert [r["index"] for r in rejects] == [1, 2]
    assert "torque_nm must be a number" in rejects[0]["reason"] and "device_id is missing" in rejects[1]["reason"]


def test_without_a_champion_a_valid_body_gets_503():
    with pytest.raises(RequestError) as err:
        predict_request(CONTRACT, None, orjson.dumps(EVENT))
    assert err.value.status == 503
