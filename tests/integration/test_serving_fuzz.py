"""A few thousand bad HTTP requests while the stream is scored: each gets its 4xx (or a 503 from a full
server), none a 500 or no answer; valid requests with the token are still scored, and every event of the
stream gets its prediction. The stream's throughput under the same load is measured by
bench/serving_fuzz.py (speed is a benchmark's business, not a test's)."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest

from tests.integration.http_fuzz import bad_requests, send
from tests.integration.serving_models import CONTRACT, register
from tests.integration.serving_process import SidecarProcess, promote, serving_env
from tests.integration.serving_topics import Feeder, events, read_topic, values

pytestmark = pytest.mark.integration


@pytest.mark.timeout(600)
def test_bad_requests_get_4xx_while_every_event_is_scored(topic_factory, settings, mlflow_uri, tmp_path):
    ctx = serving_env(topic_factory, settings, CONTINUUM_SERVING_MAX_CONCURRENT=8)
    env, client, bootstrap = ctx["env"], ctx["client"], ctx["bootstrap"]
    version = register(client, ctx["name"], lake=ctx["lake"])
    promote(env, client, version)
    good = events(12_000, seed=11)
    event = orjson.loads(good[0][1])
    numeric = [f.name for f in CONTRACT.features if f.max is not None]
    required = [CONTRACT.event_id, CONTRACT.entity_key, CONTRACT.event_time] + [
        f.name for f in CONTRACT.features if not f.nullable]
    fuzz = bad_requests(event, env["CONTINUUM_SERVING_TOKEN"], n=3000, numeric=numeric, required=required)
    sidecar = SidecarProcess(env, tmp_path / "sidecar.log").start()
    try:
        sidecar.wait_health()
        feeder = Feeder(bootstrap, env["CONTINUUM_TOPIC_TELEMETRY"], good, per_tick=50, tick_s=0.05).start()
        answers, valid = [], []
        lock = threading.Lock()

        def one(i: int) -> None:
            family, raw, allowed = fuzz[i]
            status = send(sidecar.port, raw)
            with lock:
                answers.append((family, status, status in allowed))
            if i % 100 == 0:  # a valid, authorised request between the bad ones is still answered
                code, body = sidecar.http("/predict", good[i][1], timeout=15)
                with lock:
                    valid.append((code, orjson.loads(body)["predictions"][0]["model_version"] if code == 200 else body))

        with ThreadPoolExecutor(max_workers=12) as pool:
            list(pool.map(one, range(len(fuzz))))
        feeder.wait()
        rows = read_topic(bootstrap, env["CONTINUUM_TOPIC_PREDICTIONS"], timeout_s=180,
                          until=lambda r: len({orjson.loads(x["value"])["event_id"] for x in r}) >= len(good))
        health = sidecar.wait_health()
    finally:
        sidecar.close()

    wrong = Counter((family, status) for family, status, ok in answers if not ok)
    assert not wrong, f"answers outside the allowed statuses (family, status): {dict(wrong)}"
    assert len(answers) == len(fuzz) and len({f for f, _, _ in answers}) >= 12, "every family was sent"
    busy = sum(status == 503 for _, status, _ in answers)
    assert busy < len(fuzz) / 2, f"{busy} of {len(fuzz)} refused as busy: the limit, not the requests, answered"
    assert valid and all(code == 200 and v == version for code, v in valid if code != 503), valid
    assert health["champion"] == version
    expected = {orjson.loads(v)["event_id"] for _, v, _ in good}
    assert {p["event_id"] for p in values(rows)} == expected, "every event of the stream scored"
