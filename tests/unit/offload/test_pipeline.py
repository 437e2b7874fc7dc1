"""The offload's threads: the reader ahead of the parse, the Parquet writer behind it."""

from __future__ import annotations

import threading

import pytest

from ml.offload.pipeline import Worker, prefetched


def test_the_writer_thread_runs_every_call_in_order_off_the_calling_thread():
    seen, threads = [], set()

    def write(i, j):
        seen.append((i, j))
        threads.add(threading.current_thread().name)

    with Worker(write, name="offload-writer") as submit:
        for i in range(50):
            submit(i, -i)
    assert seen == [(i, -i) for i in range(50)]
    assert threads == {"offload-writer"}


def test_a_writer_error_reaches_the_submitter_and_stops_later_writes():
    written = []

    def write(i):
        if i == 3:
            raise OSError("disk full")
        written.append(i)

    with pytest.raises(OSError, match="disk full"):
        with Worker(write, depth=1) as submit:
            for i in range(100):
                submit(i)
    assert written == [0, 1, 2]  # nothing after the failed write was written


def test_a_reader_error_reaches_the_consumer_after_the_batches_before_it():
    def batches():
        yield 1
        yield 2
        raise ConnectionError("broker gone")

    got = []
    with pytest.raises(ConnectionError, match="broker gone"):
        for b in prefetched(batches()):
            got.append(b)
    assert got == [1, 2]
