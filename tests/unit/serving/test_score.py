"""One micro-batch: decode, score once per model, decide by the version's threshold, dead-letter bad records."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from ml.contract.codec import codec_for, prediction_schema
from ml.contract.decode import RawBatch
from ml.serving.batch import bound_dead_letter, dead_letter_headers
from ml.serving.model import ServingModel
from ml.serving.routing import ServingState, parse_split, split_state
from ml.serving.score import iso_ms, score_batch
from tests.unit.serving.serving_models import CONTRACT, EVENT, torque_booster

NOW = 1_795_400_000_123
CODEC = codec_for(CONTRACT, "telemetry")


@pytest.fixture(scope="module")
def model():
    return ServingModel("machine-failure", "4", torque_booster(), threshold=0.5)


def batch(values: list, ts_ms: int = NOW - 40) -> RawBatch:
    n = len(values)
    return RawBatch(np.zeros(n, np.int32), np.arange(100, 100 + n, dtype=np.int64), np.full(n, ts_ms, np.int64),
                    [b"k"] * n, values)


def events(torques: list[float]) -> list[bytes]:
    return [orjson.dumps({**EVENT, "event_id": f"e{i}", "device_id": f"dev-{i}", "torque_nm": t})
            for i, t in enumerate(torques)]


def test_each_event_gets_one_prediction_with_the_schema_version_and_decision(model):
    out = score_batch(CONTRACT, CODEC, ServingState(model), batch(events([10.0, 90.0, 20.0])), "telemetry", NOW)
    preds = [orjson.loads(v) for _, v, _ in out.predictions]
    assert [list(p) for p in preds] == [prediction_schema(CONTRACT).names] * 3
    assert [p["event_id"] for p in preds] == ["e0", "e1", "e2"]
    assert [p["decision"] for p in preds] == ["normal", "alert", "normal"]
    assert preds[1]["score"] >= 0.5 > preds[0]["score"]
    assert {p["model_version"] for p in preds} == {"4"} and preds[0]["served_at"] == iso_ms(NOW)
    assert preds[0]["latency_ms"] == 40 and list(out.latency_s) == [0.04] * 3
    assert [k for k, _, _ in out.predictions] == ["dev-0", "dev-1", "dev-2"]
    assert [t for _, _, t in out.predictions] == [NOW - 40] * 3  # the event's own time, for the lake's hour
    (alert,) = [orjson.loads(v) for _, v in out.alerts]
    assert alert["event_id"] == "e1" and alert["threshold"] == 0.5 and alert["command"] and not out.dlq


def test_the_threshold_is_the_versions(model):
    strict = ServingModel("machine-failure", "5", model.booster, threshold=0.999)
    out = score_batch(CONTRACT, CODEC, ServingState(strict), batch(events([90.0])), "telemetry", NOW)
    assert orjson.loads(out.predictions[0][1])["decision"] == "normal" and not out.alerts


def test_bad_records_become_dead_letters_and_the_rest_is_scored(model):
    good = events([10.0, 90.0])
    raw = batch([good[0], b"{oops", orjson.dumps({**EVENT, "event_id": "x", "torque_nm": 500.0}), None, good[1]])
    out = score_batch(CONTRACT, CODEC, ServingState(model), raw, "telemetry", NOW)
    assert [orjson.loads(v)["event_id"] for _, v, _ in out.predictions] == ["e0", "e1"]
    assert [v for _, v, _ in out.dlq] == [b"{oops", raw.values[2], None]
    headers = [dict(h) for _, _, h in out.dlq]
    assert [h["source_offset"] for h in headers] == [b"101", b"102", b"103"]
    assert b"undecodable" in headers[0]["error"] and b"torque_nm=500.0 above max 100" in headers[1]["error"]
    assert headers[2]["error"] == b"empty message" and headers[0]["source_topic"] == b"telemetry"
    assert len(out.latency_s) == 2


def _size(key, value, headers) -> int:
    return len(key or b"") + len(value or b"") + sum(len(n) + len(v) for n, v in headers)


def test_a_dead_letter_is_kept_whole_up_to_the_limit_and_cut_to_it_one_byte_over():
    headers = dead_letter_headers("oversized: 5000 bytes > max_event_bytes 4096", "telemetry", 2, 7)
    limit = _size(b"dev-1", b"v" * 5000, headers)
    assert bound_dead_letter(b"dev-1", b"v" * 5000, headers, limit) == (b"dev-1", b"v" * 5000, headers)
    key, value, cut = bound_dead_letter(b"dev-1", b"w" + b"v" * 5000, headers, limit)
    assert key == b"dev-1" and cut[:4] == headers and cut[4] == ("truncated", b"5001")
    assert (b"w" + b"v" * 5000).startswith(value) and _size(key, value, cut) == limit


def test_a_key_too_long_for_the_limit_is_cut_too():
    headers = dead_letter_headers("oversized", "telemetry", 0, 1)
    key, value, cut = bound_dead_letter(b"k" * 50_000, b"v" * 50_000, headers, 8_000)
    assert _size(key, value, cut) == 8_000 and key and value and dict(cut)["truncated"] == b"50000"


@pytest.mark.parametrize("small", [True, False])
def test_oversized_records_are_dead_lettered_within_the_limit_and_counted(model, monkeypatch, small):
    import ml.serving.batch as batch_module

    if not small:  # the vectorized decoder
        monkeypatch.setattr(batch_module, "SMALL_BATCH", 1)
    huge = orjson.dumps({**EVENT, "event_id": "huge", "padding": "x" * 200_000})
    raw = batch(events([10.0, 90.0]) + [huge, b"{oops"])
    out = score_batch(CONTRACT, CODEC, ServingState(model), raw, "telemetry", NOW, dlq_max_bytes=8_000)
    assert [orjson.loads(v)["event_id"] for _, v, _ in out.predictions] == ["e0", "e1"]
    (key, value, headers), oops = out.dlq
    assert out.dlq_truncated == 1 and _size(key, value, headers) == 8_000 and huge.startswith(value)
    assert dict(headers)["truncated"] == str(len(huge)).encode() and dict(headers)["source_offset"] == b"102"
    assert b"oversized" in dict(headers)["error"] and oops[1] == b"{oops" and "truncated" not in dict(oops[2])


def test_ids_that_need_json_escaping_still_give_valid_records(model):
    raw = batch([orjson.dumps({**EVENT, "event_id": 'quote"back\\slash', "device_id": "dev\n1"})])
    (key, value, _), = score_batch(CONTRACT, CODEC, ServingState(model), raw, "telemetry", NOW).predictions
    assert orjson.loads(value)["event_id"] == 'quote"back\\slash' and key == "dev\n1"


@pytest.mark.parametrize("escaped", [False, True])
def test_a_large_batch_is_encoded_column_wise_to_the_same_records(model, monkeypatch, escaped):
    """Arrow's column-wise encoding (a large batch) gives what orjson gives record by record, also when an
    id needs escaping (a backslash in the batch's raw JSON turns the plain fast path off)."""
    import ml.serving.batch as batch_module
    import ml.serving.score as score_module

    values = events(np.linspace(0, 100, 40).tolist())
    if escaped:
        values[7] = orjson.dumps({**EVENT, "event_id": 'quote"back\\slash\u0001', "device_id": "dev\n1"})
    small = score_batch(CONTRACT, CODEC, ServingState(model), batch(values), "telemetry", NOW)
    for module in (batch_module, score_module):
        monkeypatch.setattr(module, "SMALL_BATCH", 1)
    large = score_batch(CONTRACT, CODEC, ServingState(model), batch(values), "telemetry", NOW)
    assert [v for _, v, _ in large.predictions] != [] and all(isinstance(v, bytes) for _, v, _ in large.predictions)
    assert [(k, orjson.loads(v), t) for k, v, t in large.predictions] == \
           [(k, orjson.loads(v), t) for k, v, t in small.predictions]
    if escaped:
        assert orjson.loads(large.predictions[7][1])["event_id"] == 'quote"back\\slash\u0001'


def test_split_scores_each_device_with_its_version_and_shadow_scores_all(model):
    other = ServingModel("machine-failure", "6", model.booster, threshold=0.999)
    state = split_state(model, {"4": model, "6": other}, parse_split({"4": 1, "6": 1}), shadow=other)
    raw = batch(events([90.0] * 200))
    out = score_batch(CONTRACT, CODEC, state, raw, "telemetry", NOW)
    preds = [orjson.loads(v) for _, v, _ in out.predictions]
    versions = {p["model_version"] for p in preds}
    assert versions == {"4", "6"}
    assert all(p["decision"] == ("alert" if p["model_version"] == "4" else "normal") for p in preds)
    assert len(out.alerts) == sum(p["model_version"] == "4" for p in preds)
    shadow = [orjson.loads(v) for _, v, _ in out.shadow]
    assert [s["event_id"] for s in shadow] == [p["event_id"] for p in preds]
    assert {s["model_version"] for s in shadow} == {"6"} and {s["decision"] for s in shadow} == {"normal"}


def test_every_feature_path_gives_the_same_predictions(model, monkeypatch):
    """A small batch (decoded dicts) and a large one (Arrow), with a model that takes category codes or
    one that needs the pandas frame: the same events get the same records."""
    import ml.serving.batch as batch_module
    from ml.serving.model import check_model

    coded = check_model(model, CONTRACT)
    assert coded.as_codes, "the test model takes category codes"
    torques = np.linspace(0, 100, 150).tolist()
    raw = batch(events(torques))

    def records(state) -> list:
        return [(k, orjson.loads(v), t) for k, v, t in score_batch(CONTRACT, CODEC, state, raw, "telemetry", NOW).predictions]

    small = records(ServingState(coded))
    assert len(raw) < batch_module.SMALL_BATCH
    monkeypatch.setattr(batch_module, "SMALL_BATCH", 1)
    large = records(ServingState(coded))
    frame_path = records(ServingState(model))  # as_codes False: model_frame and pandas categoricals
    assert small == large == frame_path
    assert len({r[1]["decision"] for r in small}) == 2, "both decisions occur"


@pytest.mark.parametrize("codes", [True, False])
def test_predict_answers_as_the_stream_scores_and_refuses_as_it_dead_letters(model, codes):
    """POST /predict and the stream on the same events: the same score and decision for a valid event,
    the same reason for a broken one (the dead letter's `error` header, the 400's reject)."""
    from ml.serving.api import RequestError, predict_request
    from ml.serving.model import check_model

    state = ServingState(check_model(model, CONTRACT) if codes else model)
    assert state.champion.as_codes is codes
    good = events(np.linspace(0, 100, 40).tolist())
    stream = {orjson.loads(v)["event_id"]: orjson.loads(v)
              for v in score_batch(CONTRACT, CODEC, state, batch(good), "telemetry", NOW).predictions.values}
    answer = predict_request(CONTRACT, state, b"[" + b",".join(good) + b"]")["predictions"]
    assert [a["event_id"] for a in answer] == [f"e{i}" for i in range(40)]
    assert {a["event_id"]: (a["score"], a["decision"]) for a in answer} == \
        {k: (v["score"], v["decision"]) for k, v in stream.items()}
    broken = [orjson.dumps({**EVENT, "torque_nm": 912.0}), orjson.dumps({**EVENT, "tool_wear_min": "x"}),
              orjson.dumps({"event_id": "e9"}), orjson.dumps({**EVENT, "device_type": "Q"})]
    dead = score_batch(CONTRACT, CODEC, state, batch(broken), "telemetry", NOW).dlq
    with pytest.raises(RequestError) as err:
        predict_request(CONTRACT, state, b"[" + b",".join(broken) + b"]")
    assert [r["reason"] for r in err.value.body["rejects"]] == [dict(h)["error"].decode() for _, _, h in dead]
    assert len(dead) == len(broken)
