"""The channel between the sidecar and its HTTP port process: a serving state crosses it whole (versions,
thresholds, fast path, split and shadow) and scores exactly as it does in the sidecar; a snapshot is
asked for at most every SNAPSHOT_MAX_AGE_S, and a channel that closes ends the reader."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import orjson
import pytest

from ml.contract.codec import codec_for
from ml.contract.decode import RawBatch
from ml.serving import port
from ml.serving.model import ServingModel, check_model
from ml.serving.routing import ServingState, parse_split, split_state
from ml.serving.score import score_batch
from tests.unit.serving.serving_models import CONTRACT, EVENT, constant_booster, torque_booster

CODEC = codec_for(CONTRACT, "telemetry")


def crossed(state: ServingState) -> ServingState:
    """`state` sent over a real socket pair and rebuilt on the other side."""
    mine, theirs = socket.socketpair()
    with mine, theirs:
        header, blobs = port.state_message(state)
        threading.Thread(target=port.send, args=(mine, header, blobs), daemon=True).start()
        got, got_blobs = port.receive(theirs)
    return port.state_from_message(got, got_blobs)


def records(state: ServingState) -> tuple[list, list]:
    values = [orjson.dumps({**EVENT, "event_id": f"e{i}", "device_id": f"dev-{i}", "torque_nm": t})
              for i, t in enumerate(np.linspace(0, 100, 300).tolist())]
    n = len(values)
    raw = RawBatch(np.zeros(n, np.int32), np.arange(n, dtype=np.int64), np.full(n, 1_795_400_000_000, np.int64),
                   [b"k"] * n, values)
    out = score_batch(CONTRACT, CODEC, state, raw, "telemetry", 1_795_400_000_040)
    return [orjson.loads(v) for v in out.predictions.values], [orjson.loads(v) for v in out.shadow.values]


@pytest.mark.parametrize("codes", [True, False])
def test_a_state_crosses_whole_and_scores_exactly_as_in_the_sidecar(codes):
    champion = ServingModel("machine-failure", "4", torque_booster(), threshold=0.5)
    champion = check_model(champion, CONTRACT) if codes else champion
    other = ServingModel("machine-failure", "6", constant_booster(0.3), threshold=0.25)
    state = split_state(champion, {"4": champion, "6": other}, parse_split({"4": 3, "6": 1}), shadow=other)
    copy = crossed(state)
    assert copy.champion.version == "4" and copy.champion.as_codes is codes and copy.shadow.threshold == 0.25
    assert [(cum, m.version, m.threshold) for cum, m in copy.split] == [(cum, m.version, m.threshold)
                                                                         for cum, m in state.split]
    assert records(copy) == records(state)
    predictions, shadow = records(copy)
    assert {p["model_version"] for p in predictions} == {"4", "6"} and len(shadow) == len(predictions)
    plain = crossed(ServingState(champion))
    assert plain.split == () and plain.shadow is None and records(plain) == records(ServingState(champion))


def test_probes_share_one_snapshot_within_its_age_and_ask_again_past_it():
    mine, theirs = socket.socketpair()
    side = port.PortSide(theirs)
    asks = []

    def sidecar() -> None:  # answers each ask with a numbered snapshot
        try:
            while True:
                header, _ = port.receive(mine)
                asks.append(header["type"])
                port.send(mine, {"type": "snapshot"}, [orjson.dumps({"ready": True, "n": len(asks)}), b"m"])
        except (port.ChannelClosed, OSError):
            pass

    threading.Thread(target=sidecar, daemon=True).start()
    ended = []

    def read() -> None:
        try:
            side.read()
        except port.ChannelClosed:
            ended.append("closed")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    first = side.snapshot()
    assert first == ({"ready": True, "n": 1}, b"m")
    again = [side.snapshot()[0]["n"] for _ in range(20)]  # within SNAPSHOT_MAX_AGE_S: the same snapshot
    assert again == [1] * 20 and asks == ["ask"]
    time.sleep(port.SNAPSHOT_MAX_AGE_S + 0.02)
    assert side.snapshot()[0]["n"] == 2 and asks == ["ask", "ask"]
    mine.shutdown(socket.SHUT_RDWR)
    mine.close()
    reader.join(5)
    assert ended == ["closed"], "the reader ends when the sidecar closes the channel"


def test_an_unanswered_ask_gives_the_last_snapshot_and_the_next_probe_asks_again(monkeypatch):
    monkeypatch.setattr(port, "SNAPSHOT_WAIT_S", 0.2)
    mine, theirs = socket.socketpair()
    side = port.PortSide(theirs)
    started = time.monotonic()
    status, _ = side.snapshot()  # the sidecar never answers
    assert status["ready"] is False and time.monotonic() - started < 1.0
    assert port.receive(mine)[0]["type"] == "ask"
    side.snapshot()
    assert port.receive(mine)[0]["type"] == "ask", "asked again after an unanswered ask"
    mine.close()
    theirs.close()


def test_the_port_process_keeps_its_token_and_no_other_credential():
    kept = ["CONTINUUM_SERVING_TOKEN", "CONTINUUM_CONTRACT", "CONTINUUM_SERVING_MAX_EVENTS", "PATH", "HOME"]
    dropped = ["MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_TOKEN", "AWS_ACCESS_KEY_ID",
               "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "CONTINUUM_POSTGRES_PASSWORD", "GOOGLE_APPLICATION_CREDENTIALS",
               "continuum_serving_token_old"]
    assert [name for name in kept if port.credential(name)] == []
    assert [name for name in dropped if not port.credential(name)] == []


def test_a_held_port_is_tried_again_until_it_is_let_go_and_named_when_it_is_not():
    held = socket.create_server(("127.0.0.1", 0))
    number = held.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(OSError, match="CONTINUUM_SERVING_PORT"):
        port.listen("127.0.0.1", number, wait_s=0.4)
    assert 0.4 <= time.monotonic() - started < 2.0
    threading.Timer(0.3, held.close).start()
    port.listen("127.0.0.1", number, wait_s=5).close()  # let go while it waits: it listens
