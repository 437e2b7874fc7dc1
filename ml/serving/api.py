"""The sidecar's HTTP port: `/healthz`, `/metrics` and `POST /predict`.

`/healthz` and `/metrics` are open (probes and Prometheus read them); `/predict` needs the bearer token
`CONTINUUM_SERVING_TOKEN` (401 without it or with another; with none configured it answers 503, so a
sidecar is never open to anonymous scoring by default). The token is checked before the body is read.
`/predict` scores request/response callers with the very model, rules and feature code of the stream's
small batches (`check_event` per event, then `batch_features` and `predict` on the current state). Its body is one event as a JSON object, a JSON array of
events, or `{"events": [...]}`, each event in the telemetry contract. A bad body gets a 400 naming every
broken field of every event (`{}` names every required field); an event over the contract's
`max_event_bytes` (the stream's limit, measured as compact JSON) or a body whose declared length is
over `CONTINUUM_SERVING_MAX_BODY_BYTES` gets a 413, the latter before the body is read, as does a body
of more than `CONTINUUM_SERVING_MAX_EVENTS` events; a client that does not send its declared body within
`CONTINUUM_SERVING_REQUEST_TIMEOUT_S` gets a 408; no champion yet gets a 503; any other failure a 500
with its reason, logged with the traceback. The server's places are bounded (`ml.serving.http_server`);
it runs in the sidecar's HTTP port process (`ml.serving.port`), never beside the scoring loop.
"""

from __future__ import annotations

import hmac
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler
from typing import Callable

import numpy as np
import orjson
import pyarrow as pa
from prometheus_client import CONTENT_TYPE_LATEST

from ml.contract import Contract, ContractError, check_event
from ml.serving.batch import Decoded
from ml.serving.http_server import BoundedServer, HttpLimits
from ml.serving.routing import ServingState
from ml.serving.score import batch_features, predict

log = logging.getLogger(__name__)


class RequestError(ValueError):
    """A /predict body the sidecar cannot score; `status` and `body` are the response."""

    def __init__(self, status: int, error: str, rejects: list | None = None) -> None:
        super().__init__(error)
        self.status, self.body = status, {"error": error, **({"rejects": rejects} if rejects else {})}


def predict_request(contract: Contract, state: ServingState | None, body: bytes, max_events: int = 1000) -> dict:
    """Score the events of a /predict body; RequestError (4xx/503) when it cannot be scored."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, f"body is not JSON: {exc}") from None
    events = parsed.get("events") if isinstance(parsed, dict) and "events" in parsed else parsed
    events = [events] if isinstance(events, dict) else events
    if not isinstance(events, list) or not events:
        raise RequestError(400, "expected an event object, a non-empty array of events or {\"events\": [...]}")
    if len(events) > max_events:
        raise RequestError(413, f"{len(events)} events in one request; at most {max_events} "
                                "(CONTINUUM_SERVING_MAX_EVENTS)")
    rejects = [{"index": i, "reason": f"expected a JSON object, got {type(e).__name__}"}
               for i, e in enumerate(events) if not isinstance(e, dict)]
    if rejects:
        raise RequestError(400, "events must be JSON objects", rejects)
    _check_sizes(contract, events)
    rows, rejects = [], []
    for i, event in enumerate(events):  # the stream's per-event rules, microseconds an event (no frame)
        try:
            rows.append(check_event(contract, event))
        except ContractError as exc:
            rejects.append({"index": i, "reason": str(exc)})
    if rejects:
        raise RequestError(400, f"{len(rejects)} of {len(events)} events break the contract {contract.name}", rejects)
    if state is None:
        raise RequestError(503, "no champion model yet")
    ids = [row[contract.event_id] for row in rows]
    devices = [row[contract.entity_key] for row in rows]
    decoded = Decoded(pa.array(ids, pa.string()), pa.array(devices, pa.string()), np.ones(len(rows), dtype=bool), [],
                      rows=rows, columns=(contract.entity_key, *contract.raw_columns))
    scores, index, models = predict(state, batch_features(contract, state, decoded), devices if state.split else [])
    return {"predictions": [
        {contract.event_id: i, contract.entity_key: d, "model_name": models[m].name,
         "model_version": models[m].version, "score": s,
         "decision": "alert" if s >= models[m].threshold else "normal", "threshold": models[m].threshold}
        for i, d, s, m in zip(ids, devices, scores.tolist(), index.tolist())]}


def _check_sizes(contract: Contract, events: list[dict]) -> None:
    """The stream's per-event limit: each event, as compact JSON (the bytes it would be on the topic)."""
    limit = contract.limits.max_event_bytes
    sizes = [len(orjson.dumps(e)) for e in events]
    rejects = [{"index": i, "reason": f"oversized: {n} bytes > max_event_bytes {limit}"}
               for i, n in enumerate(sizes) if n > limit]
    if rejects:
        raise RequestError(413, f"{len(rejects)} of {len(events)} events are over max_event_bytes {limit} of the "
                                f"contract {contract.name} (measured as compact JSON)", rejects)


class ServingApi:
    """The HTTP server, in a daemon thread; `status()` says whether the sidecar is ready and why."""

    def __init__(self, listener: socket.socket | tuple[str, int], contract: Contract,
                 state: Callable[[], ServingState | None], status: Callable[[], dict],
                 metrics: Callable[[], bytes], *, limits: HttpLimits) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            timeout = limits.timeout_s  # the socket's: a client silent for longer is closed
            default_request_version = "HTTP/1.0"  # a broken request line still gets a status line

            def do_GET(self):  # noqa: N802 (stdlib name)
                if self.path == "/healthz":
                    body = api.status()
                    self._send(200 if body.get("ready") else 503, orjson.dumps(body))
                elif self.path == "/metrics":
                    self._send(200, api.metrics(), CONTENT_TYPE_LATEST)
                else:
                    self._send(404, orjson.dumps({"error": f"no such path {self.path}"}))

            def do_POST(self):  # noqa: N802
                if self.path != "/predict":
                    return self._send(404, orjson.dumps({"error": f"no such path {self.path}"}))
                refused = api.refuse_caller(self.headers.get("Authorization"))
                if refused:
                    self.close_connection = True
                    return self._send(refused[0], orjson.dumps({"error": refused[1]}),
                                      extra={"WWW-Authenticate": "Bearer"} if refused[0] == 401 else None)
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                    if length < 0:
                        raise ValueError(length)
                except ValueError:
                    return self._send(400, orjson.dumps({"error": "a valid Content-Length is required"}))
                if length > api.limits.max_body_bytes:  # refused unread; the connection closes after the answer
                    self.close_connection = True
                    return self._send(413, orjson.dumps({"error": f"body of {length} bytes is over the limit of "
                                                                  f"{api.limits.max_body_bytes} bytes "
                                                                  "(CONTINUUM_SERVING_MAX_BODY_BYTES)"}))
                try:
                    body = self.rfile.read(length)
                    if len(body) < length:
                        raise TimeoutError
                except (TimeoutError, OSError):  # a slow or vanished client frees its place
                    self.close_connection = True
                    return self._send(408, orjson.dumps({"error": f"the body did not arrive within "
                                                                  f"{api.limits.timeout_s:g} s "
                                                                  "(CONTINUUM_SERVING_REQUEST_TIMEOUT_S)"}))
                try:
                    self._send(200, orjson.dumps(predict_request(api.contract, api.state(), body,
                                                                 api.limits.max_events)))
                except RequestError as exc:
                    self._send(exc.status, orjson.dumps(exc.body))
                except Exception as exc:  # a fault of the sidecar, not of the request: answer, never drop
                    log.exception("POST /predict failed")
                    self._send(500, orjson.dumps({"error": f"internal error: {type(exc).__name__}: {exc}"[:500]}))

            def _send(self, code: int, body: bytes, ctype: str = "application/json",
                      extra: dict | None = None) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in (extra or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client left before its answer: nothing to do
                    self.close_connection = True

            def log_message(self, fmt, *args):
                log.debug("http: " + fmt, *args)

        self.contract, self.metrics, self.state, self.status = contract, metrics, state, status
        self.limits = limits
        self.server = BoundedServer(listener, Handler, limits.max_concurrent)
        self._thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)

    def refuse_caller(self, authorization: str | None) -> tuple[int, str] | None:
        """(status, reason) when the caller of /predict may not score; None when its token is the one."""
        if not self.limits.token:
            return 503, "POST /predict is off: this sidecar has no token (set CONTINUUM_SERVING_TOKEN)"
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.limits.token.encode()):
            return 401, "POST /predict needs the header Authorization: Bearer <CONTINUUM_SERVING_TOKEN>"
        return None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
