"""Bad requests for the sidecar's HTTP port, generated from a seed: each is raw bytes on a fresh
connection, with the answers the contract allows for it. Families: no or a wrong token, bodies that are
not JSON (cut, NaN, Infinity, random bytes), JSON of the wrong shape, events with wrong types, values out
of range or missing fields, too many events, a declared length over the limit, unknown paths and methods,
broken headers. None of them may get a 500 or go unanswered."""

from __future__ import annotations

import random
import socket

import orjson

CLIENT_ERRORS = frozenset(range(400, 500))


def _request(token: str | None, body: bytes, path: str = "/predict", method: str = "POST",
             length: int | None = None) -> bytes:
    head = [f"{method} {path} HTTP/1.1", "Host: sidecar", "Content-Type: application/json",
            f"Content-Length: {len(body) if length is None else length}"]
    if token is not None:
        head.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def bad_requests(event: dict, token: str, n: int, numeric: list[str], required: list[str], seed: int = 7,
                 max_body_bytes: int = 1024 * 1024, max_events: int = 1000) -> list[tuple[str, bytes, frozenset]]:
    """`n` (family, raw request, allowed statuses) generated from `seed`, for a valid `event` whose
    `numeric` fields have bounds and whose `required` fields may not be missing. 503 is allowed everywhere:
    a full server answers it at once, which is the guarantee under load."""
    rng = random.Random(seed)
    fields = numeric
    out = []

    def add(family: str, raw: bytes, allowed=CLIENT_ERRORS) -> None:
        out.append((family, raw, frozenset(allowed) | {503}))

    makers = [
        lambda: add("no token", _request(None, orjson.dumps(event)), {401}),
        lambda: add("wrong token", _request(token[::-1] + "x", orjson.dumps(event)), {401}),
        lambda: add("cut JSON", _request(token, orjson.dumps(event)[: rng.randrange(1, 40)]), {400}),
        lambda: add("NaN", _request(token, orjson.dumps({**event, rng.choice(fields): 1.5})
                                    .replace(b"1.5", rng.choice([b"NaN", b"Infinity", b"-Infinity"]))), {400}),
        lambda: add("random bytes", _request(token, rng.randbytes(rng.randrange(1, 300))), {400, 413}),
        lambda: add("wrong shape", _request(token, orjson.dumps(rng.choice([[], 7, "x", None, {"events": 3},
                                                                            [1, 2], {"events": []}]))), {400}),
        lambda: add("wrong type", _request(token, orjson.dumps({**event, rng.choice(fields): rng.choice(
            ["lots", [1], {"a": 1}, True])})), {400}),
        lambda: add("missing field", _request(token, orjson.dumps(_without(event, rng.choice(required)))), {400}),
        lambda: add("out of range", _request(token, orjson.dumps({**event, rng.choice(fields): 1e12})), {400}),
        lambda: add("too many events", _request(token, orjson.dumps([event] * (max_events + 1))), {413}),
        lambda: add("declared too long", _request(token, b"", length=max_body_bytes + rng.randrange(1, 10**6)),
                    {413}),
        lambda: add("bad length", _request(token, b"{}", length=-5), {400}),
        lambda: add("unknown path", _request(token, orjson.dumps(event), path=rng.choice(
            ["/", "/predict/x", "/admin", "/../etc/passwd"])), {404}),
        lambda: add("wrong method", _request(token, b"", method=rng.choice(["PUT", "DELETE", "PATCH"])), {501}),
        lambda: add("broken request line", rng.choice([b"\x00\x01\x02\r\n\r\n", b"GET\r\n\r\n",
                                                       b"POST /predict HTTP/9.9\r\n\r\n"]), {400, 505}),
    ]
    for _ in range(n):
        rng.choice(makers)()
    return out


def _without(event: dict, name: str) -> dict:
    return {k: v for k, v in event.items() if k != name}


def send(port: int, raw: bytes, timeout_s: float = 15.0) -> int | None:
    """Send one raw request on a new connection; the answer's status, or None when none came."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        try:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server answered (and closed) before reading it all: read the answer
            pass
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            return None
    line = data.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) >= 2 and line[1].isdigit() else None
