"""Repeats found by fingerprint: every record of a repeated id is a suspect, whatever the id's length."""

import numpy as np
import pyarrow as pa

from ml.offload.screen import fingerprints, repeated, suspects


def test_equal_ids_share_a_fingerprint_and_different_ids_do_not():
    ids = [f"m-{i:05d}-{'x' * (i % 90)}" for i in range(20_000)] + ["", "a", "b", "ab", "ba"]
    prints = fingerprints(pa.array(ids))
    assert len(np.unique(prints)) == len(ids)  # no collision among these, long ids (> 64 bytes) included
    again = fingerprints(pa.chunked_array([pa.array(ids[:7]), pa.array(ids[7:])]))
    assert np.array_equal(prints, again)  # the same id gives the same fingerprint in any batch
    sliced = pa.array(["zz", *ids])[1:]  # an array with an offset into its buffers
    assert np.array_equal(fingerprints(sliced), prints)


def test_only_rows_of_repeated_ids_are_suspects():
    first = pa.record_batch({"event_id": ["a", "b", "c"], "kafka_partition": pa.array([0, 0, 0], pa.int32()),
                             "kafka_offset": [1, 2, 3]})
    second = pa.record_batch({"event_id": ["d", "b", "e"], "kafka_partition": pa.array([1, 1, 1], pa.int32()),
                              "kafka_offset": [7, 8, 9]})
    twice = repeated([fingerprints(first.column("event_id")), fingerprints(second.column("event_id"))])
    assert len(twice) == 1
    rows = suspects([first, second], "event_id", twice)
    assert sorted(zip(rows.column("kafka_partition").to_pylist(), rows.column("kafka_offset").to_pylist())) == \
        [(0, 2), (1, 8)]
    assert suspects([first], "event_id", repeated([fingerprints(first.column("event_id"))])).num_rows == 0
