"""At-least-once bookkeeping (offsets are committed only for the prefix of batches fully acknowledged) and the
scoring threads' priority."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pytest

from ml.runtime import SCORER_NICE
from ml.serving.metrics import ServingMetrics
from ml.serving.offsets import BatchAck, DeliveryFailed, OffsetTracker, first_offsets, last_offsets
from ml.serving.stream import SCORING_THREADS, StreamLoop


class CommitLog:
    """Records what would be committed (the offsets logic under test never talks to Kafka itself)."""

    def __init__(self):
        self.commits = []

    def commit(self, offsets, asynchronous):
        self.commits.append({tp.partition: tp.offset for tp in offsets})


class Msg:
    def topic(self):
        return "predictions"


def acked(offsets, pending):
    ack = BatchAck(offsets)
    ack.pending = pending
    return ack


def test_a_batch_is_committed_only_after_it_and_every_earlier_batch_is_acknowledged():
    log = CommitLog()
    tracker = OffsetTracker(log, "telemetry")
    first, second = acked({0: 10, 1: 5}, 2), acked({0: 20}, 1)
    tracker.inflight.extend([first, second])
    second.done(None, Msg())
    assert tracker.commit_ready() == 0 and log.commits == []  # the first is still in flight
    first.done(None, Msg())
    assert tracker.commit_ready() == 0
    first.done(None, Msg())
    assert tracker.commit_ready() == 2
    assert log.commits == [{0: 21, 1: 6}]  # the next offset to read, per partition


def test_a_failed_delivery_stops_the_commits():
    class Err:
        def str(self):
            return "timed out"

    log = CommitLog()
    tracker = OffsetTracker(log, "telemetry")
    ack = acked({0: 3}, 1)
    tracker.inflight.append(ack)
    ack.done(Err(), Msg())
    with pytest.raises(DeliveryFailed, match="timed out"):
        tracker.commit_ready()
    assert log.commits == []


class Err:
    def str(self):
        return "Broker: Message size too large"


def test_after_a_failed_batch_no_later_commit_moves_past_it():
    """acks [ok, fail, ok]: the batch before the failed one is committed, up to the failed batch's first
    offsets; every later call (a drain, a close) commits nothing and raises again."""
    log = CommitLog()
    tracker = OffsetTracker(log, "telemetry")
    before, failed, after = acked({0: 9, 1: 4}, 1), acked({0: 19, 1: 8}, 1), acked({0: 29, 1: 12}, 1)
    failed.first = {0: 10, 1: 5}
    tracker.inflight.extend([before, failed, after])
    before.done(None, Msg())
    failed.done(Err(), Msg())
    after.done(None, Msg())
    with pytest.raises(DeliveryFailed, match=r"0:10, 1:5.*Message size too large"):
        tracker.commit_ready()
    assert log.commits == [{0: 10, 1: 5}]  # exactly the failed batch's first offsets: it is read again
    for sync in (False, True):
        with pytest.raises(DeliveryFailed, match="0:10, 1:5"):
            tracker.commit_ready(sync=sync)
    assert log.commits == [{0: 10, 1: 5}], "nothing past the failed batch, on any partition"


def test_a_batch_that_failed_before_all_its_records_were_acknowledged_stops_the_commits_at_once():
    log = CommitLog()
    tracker = OffsetTracker(log, "telemetry")
    failed, after = acked({0: 3}, 3), acked({0: 7}, 1)
    tracker.inflight.extend([failed, after])
    failed.done(Err(), Msg())  # two of its records are still on their way
    after.done(None, Msg())
    with pytest.raises(DeliveryFailed):
        tracker.commit_ready()
    failed.done(None, Msg()), failed.done(None, Msg())
    with pytest.raises(DeliveryFailed):
        tracker.commit_ready(sync=True)
    assert log.commits == []


def test_records_left_unacknowledged_by_a_drain_fail_the_first_batch_still_waiting():
    log = CommitLog()
    tracker = OffsetTracker(log, "telemetry")
    done, waiting, after = acked({0: 3}, 0), acked({0: 7}, 2), acked({0: 9}, 0)
    waiting.first = {0: 4}
    tracker.inflight.extend([done, waiting, after])
    tracker.give_up("2 output records still undelivered after 30 s")
    with pytest.raises(DeliveryFailed, match="0:4.*still undelivered"):
        tracker.commit_ready(sync=True)
    assert log.commits == [{0: 4}]


@pytest.mark.skipif(sys.platform != "linux", reason="a thread has a CPU priority of its own on Linux only")
def test_scoring_threads_run_below_the_priority_of_the_loop_thread():
    loop = StreamLoop(CommitLog(), None, "telemetry", ServingMetrics(), batch_max=10, batch_wait_s=0.0)
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    everyone = threading.Barrier(SCORING_THREADS, timeout=10)  # each task holds its thread until all have one

    def priority():
        everyone.wait()
        return threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    try:
        seen = dict(f.result(10) for f in [loop._scorer.submit(priority) for _ in range(SCORING_THREADS)])
    finally:
        loop._scorer.shutdown(wait=True)
    assert len(seen) == SCORING_THREADS
    assert set(seen.values()) == {min(mine + SCORER_NICE, 19)}, (mine, seen)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # the loop's own is unchanged


def test_last_offsets_are_each_partitions_last_record_in_consume_order():
    partitions = np.array([2, 2, 0, 0, 0, 1, 2, 2, 0, 1], dtype=np.int32)  # runs, and a partition met again
    offsets = np.array([10, 11, 5, 6, 7, 40, 12, 13, 8, 41], dtype=np.int64)
    assert last_offsets(partitions, offsets) == {2: 13, 0: 8, 1: 41}
    assert last_offsets(partitions, offsets) == dict(zip(partitions.tolist(), offsets.tolist()))
    assert last_offsets(np.array([3], np.int32), np.array([99], np.int64)) == {3: 99}
    assert last_offsets(np.array([], np.int32), np.array([], np.int64)) == {}


def test_first_offsets_are_each_partitions_first_record_in_consume_order():
    partitions = np.array([2, 2, 0, 0, 0, 1, 2, 2, 0, 1], dtype=np.int32)
    offsets = np.array([10, 11, 5, 6, 7, 40, 12, 13, 8, 41], dtype=np.int64)
    assert first_offsets(partitions, offsets) == {2: 10, 0: 5, 1: 40}
    assert first_offsets(np.array([3], np.int32), np.array([99], np.int64)) == {3: 99}
    assert first_offsets(np.array([], np.int32), np.array([], np.int64)) == {}
