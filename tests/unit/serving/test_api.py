"""POST /predict: the same model and features as the stream, a clear 4xx for a bad body, and a 500 with
its reason when the sidecar itself fails."""

from __future__ import annotations

import http.client
import logging
import socket
import time

import orjson
import pytest
from prometheus_client import generate_latest

from ml.contract import load_contract
from ml.serving.api import RequestError, ServingApi, predict_request
from ml.serving.http_server import HttpLimits
from ml.serving.metrics import ServingMetrics
from ml.serving.model import ServingModel
from ml.serving.routing import ServingState
from tests.unit.serving.serving_models import EVENT, constant_booster

CONTRACT = load_contract("machine_telemetry")
MAX_EVENTS = HttpLimits().max_events
TOKEN = "a-test-token-of-this-module"


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
    (orjson.dumps(EVENT).replace(b'"torque_nm":40.0', b'"torque_nm":NaN'), 400, "not JSON"),
    (orjson.dumps(EVENT).replace(b'"torque_nm":40.0', b'"torque_nm":Infinity'), 400, "not JSON"),
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

    def start(state, max_body_bytes: int = 64 * 1024, **limits):
        limits = HttpLimits(**{"token": TOKEN, "max_body_bytes": max_body_bytes, **limits})
        metrics = ServingMetrics()
        api = ServingApi(("127.0.0.1", 0), CONTRACT, lambda: state, lambda: {"ready": True},
                         lambda: generate_latest(metrics.registry), limits=limits)
        api.start()
        servers.append(api)
        return api.port

    yield start
    for api in servers:
        api.stop()


def post(port: int, body: bytes, length: int | None = None, token: str | None = TOKEN) -> tuple[int, dict]:
    """POST /predict with a declared Content-Length (the body's own by default) and the bearer token;
    (status, JSON answer)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("POST", "/predict")
        conn.putheader("Content-Type", "application/json")
        if token is not None:
            conn.putheader("Authorization", f"Bearer {token}")
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


def test_predict_needs_the_bearer_token_and_probes_stay_open(serve, state):
    port = serve(state)
    assert post(port, orjson.dumps(EVENT))[0] == 200
    for token in (None, "wrong", TOKEN + "x", ""):
        status, answer = post(port, orjson.dumps(EVENT), token=token)
        assert status == 401 and "Authorization: Bearer" in answer["error"], token
    for path in ("/healthz", "/metrics"):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", path)
        assert conn.getresponse().status == 200, path
        conn.close()


def test_without_a_configured_token_predict_is_off(serve, state):
    port = serve(state, token="")
    for token in (None, "", "anything"):
        status, answer = post(port, orjson.dumps(EVENT), token=token)
        assert status == 503 and "CONTINUUM_SERVING_TOKEN" in answer["error"]


def test_the_event_count_limit_at_its_edge(serve, state):
    port = serve(state, max_events=3)
    events = [{**EVENT, "event_id": f"e{i}"} for i in range(4)]
    status, answer = post(port, orjson.dumps(events[:3]))
    assert status == 200 and len(answer["predictions"]) == 3
    status, answer = post(port, orjson.dumps(events))
    assert status == 413 and "4 events in one request; at most 3" in answer["error"]


def _hold_a_place(port: int, declared: int = 100) -> socket.socket:
    """A client that sends its headers and never its body: it holds one of the server's places."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                 f"Content-Length: {declared}\r\n\r\n".encode())
    return sock


def _status_line(sock: socket.socket) -> bytes:
    return sock.recv(4096).split(b"\r\n", 1)[0]


def test_a_full_server_answers_503_at_once_and_a_slow_client_gets_408(serve, state):
    port = serve(state, max_concurrent=2, timeout_s=1.5)
    held = [_hold_a_place(port), _hold_a_place(port)]
    time.sleep(0.3)  # both accepted and waiting for their bodies
    started = time.monotonic()
    status, answer = post(port, orjson.dumps(EVENT))
    assert status == 503 and "most requests" in answer["error"]
    assert time.monotonic() - started < 1.0, "answered at once, not after a held place frees"
    # the held clients never send their bodies: each gets 408 at its timeout and frees its place
    assert [_status_line(s) for s in held] == [b"HTTP/1.0 408 Request Timeout"] * 2
    for sock in held:
        sock.close()
    assert post(port, orjson.dumps(EVENT))[0] == 200


def test_a_client_that_never_sends_a_request_line_is_closed_at_its_timeout(serve, state):
    port = serve(state, max_concurrent=1, timeout_s=1.0)
    idle = socket.create_connection(("127.0.0.1", port), timeout=10)
    assert idle.recv(4096) == b"", "closed by the server without an answer"
    idle.close()
    # the client sees the close before the server's thread gives its place back: wait for that, bounded
    deadline, status = time.monotonic() + 10, None
    while status != 200 and time.monotonic() < deadline:
        status = post(port, orjson.dumps(EVENT))[0]
    assert status == 200, "its place is free again"
