"""The batch buffer Arrow's parser reads: built only when every value can be one line of it."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ml.contract import load_contract
from ml.contract.codec import codec_for
from ml.contract.decode import ndjson, newlines

CODEC = codec_for(load_contract("machine_telemetry"), "telemetry")
LIMIT = CODEC.max_bytes


def event(i: int, size: int = 0) -> bytes:
    value = b'{"event_id":"e%d"}' % i
    return value if not size else value[:-1] + b',"pad":"' + b"x" * (size - len(value) - 9) + b'"}'


def test_clean_values_are_joined_with_one_newline_between_them():
    values = [event(i) for i in range(1000)]
    assert ndjson(CODEC, values) == b"\n".join(values)
    assert ndjson(CODEC, values[:1]) == values[0]


@pytest.mark.parametrize("where", [0, 500, 999])
def test_a_value_with_a_newline_of_its_own_or_missing_rules_the_buffer_out(where):
    values = [event(i) for i in range(1000)]
    for bad in (b'{"event_id":\n"x"}', b'{"a":1}\n{"b":2}', b"\n", None):
        assert ndjson(CODEC, values[:where] + [bad] + values[where + 1:]) == b"", bad


@pytest.mark.parametrize("where", [0, 500, 999])
def test_an_oversized_value_rules_the_buffer_out_wherever_it_is(where):
    values = [event(i) for i in range(1000)]
    at_limit = values[:where] + [event(where, LIMIT)] + values[where + 1:]
    assert len(at_limit[where]) == LIMIT
    assert ndjson(CODEC, at_limit) == b"\n".join(at_limit)
    over = values[:where] + [event(where, LIMIT + 1)] + values[where + 1:]
    assert ndjson(CODEC, over) == b""
    assert ndjson(CODEC, [event(0, LIMIT + 1)]) == b""


def test_no_values_make_no_buffer():
    assert ndjson(CODEC, []) == b""


def test_newlines_are_found_on_several_threads_at_once_each_with_its_own_buffer():
    rng = np.random.default_rng(7)
    blobs = [rng.choice(np.frombuffer(b"ab\n", np.uint8), size=n).tobytes() for n in (10, 100_000, 3_000, 250_000)]
    want = [[i for i, c in enumerate(blob) if c == 10] for blob in blobs]
    failures = []

    def scan(k: int) -> None:
        for _ in range(30):
            for blob, expected in zip(blobs[k:] + blobs[:k], want[k:] + want[:k]):
                if newlines(blob).tolist() != expected:
                    failures.append(k)

    threads = [threading.Thread(target=scan, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
