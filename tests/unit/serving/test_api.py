"""POST /predict: the same model and features as the stream, a clear 4xx for a bad body, and a 500 with
its reason when the sidecar itself fails."""

from __future__ import annotations

import http.client
import logging

import orjson
import pytest

from ml.contract import load_contract
from ml.serving.api import MAX_EVENTS, RequestError, ServingApi, predict_request
from ml.serving.metrics import ServingMetrics
from ml.serving.model import ServingModel
from ml.serving.routing import ServingState
from tests.unit.serving.serving_models import EVENT, constant_booster

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


@pytest.mark.parametrize("body", [{}, [{}], [EVENT, {}]])
def test_an_event_without_fields_gets_400_naming_every_required_field(state, body):
    with pytest.raises(RequestError) as err:
        predict_request(CONTRACT, state, orjson.dumps(body))
    assert err.value.status == 400 and "break the contract" in err.value.body["error"]
    (empty,) = err.value.body["rejects"]
    assert empty["index"] == (len(body) - 1 if isinstance(body, list) else 0)
    required = [CONTRACT.event_id, CONTRACT.entity_key, CONTRACT.event_time] + [
        f.name for f in CONTRACT.features if not f.nullable]
    assert all(f"{name} is missing" in empty["reason"] for name in required), empty["reason"]


def sized(n: int) -> dict:
    """The valid event padded so that it is exactly `n` bytes as compact JSON."""
    base = len(orjson.dumps({**EVENT, "note": ""}))
    event = {**EVENT, "note": "x" * (n - base)}
    assert len(orjson.dumps(event)) == n
    return event


def test_the_stream_event_limit_applies_to_each_event_at_its_edge(state):
    limit = CONTRACT.limits.max_event_bytes
    assert limit == 4096
    answer = predict_request(CONTRACT, state, orjson.dumps([sized(limit), {**sized(limit), "event_id": "e2"}]))
    assert [p["event_id"] for p in answer["predictions"]] == ["e1", "e2"]
    with pytest.raises(RequestError) as err:
        predict_request(CONTRACT, state, orjson.dumps([sized(limit), {**sized(limit + 1), "event_id": "e2"}]))
    assert err.value.status == 413 and "max_event_bytes 4096" in err.value.body["error"]
    assert err.value.body["rejects"] == [{"index": 1, "reason": "oversized: 4097 bytes > max_event_bytes 4096"}]


class Raising:
    """A booster that fails the way a broken model file or a library fault does."""

    def inplace_predict(self, data):
        raise RuntimeError("booster exploded")


@pytest.fixture
def serve():
    """Start the HTTP port on a free loopback port with a given state; yields a POST function."""
    servers = []

    def start(state, max_body_bytes: int = 64 * 1024):
        api = ServingApi("127.0.0.1", 0, CONTRACT, ServingMetrics(), lambda: state, lambda: {"ready": True},
                         max_body_bytes=max_body_bytes)
        api.start()
        servers.append(api)
        return api.port

    yield start
    for api in servers:
        api.stop()


def post(port: int, body: bytes, length: int | None = None) -> tuple[int, dict]:
    """POST /predict with a declared Content-Length (the body's own by default); (status, JSON answer)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("POST", "/predict")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(body) if length is None else length))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, orjson.loads(resp.read())
    finally:
        conn.close()


def test_a_declared_length_over_the_bound_is_refused_unread_at_its_edge(serve, state):
    port = serve(state, max_body_bytes=8192)
    status, answer = post(port, b"", length=8193)  # nothing follows the headers: a read would wait
    assert status == 413 and "8193 bytes is over the limit of 8192 bytes" in answer["error"]
    assert "CONTINUUM_SERVING_MAX_BODY_BYTES" in answer["error"]
    body = orjson.dumps({"events": [sized(4096)]})
    body += b" " * (8192 - len(body))
    assert len(body) == 8192
    status, answer = post(port, body)
    assert status == 200 and answer["predictions"][0]["event_id"] == "e1"


def test_a_model_failure_answers_500_with_its_reason_and_logs_the_traceback(serve, caplog):
    port = serve(ServingState(ServingModel("m", "4", Raising(), threshold=0.5)))
    with caplog.at_level(logging.ERROR, logger="ml.serving.api"):
        status, answer = post(port, orjson.dumps(EVENT))
    assert status == 500 and answer == {"error": "internal error: RuntimeError: booster exploded"}
    (logged,) = [r for r in caplog.records if r.name == "ml.serving.api"]
    assert "POST /predict failed" in logged.getMessage() and logged.exc_info[0] is RuntimeError
