"""At-least-once bookkeeping (offsets are committed only for the prefix of batches fully acknowledged) and the
streaming GC, thread and priority settings."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pytest

from ml.serving.metrics import ServingMetrics
from ml.serving.stream import SCORER_NICE, SCORING_THREADS, BatchAck, DeliveryFailed, OffsetTracker, StreamLoop, \
    last_offsets


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


def _cyclic_garbage(objects: int) -> "weakref.ref":
    """About `objects` objects that only the cyclic collector can free (classes, as XGBoost makes one per
    predict call); returns a weak reference to one of them."""
    import gc
    import weakref

    start = gc.get_count()[0]
    made = type("PerCall", (), {})  # a class, its mro, dict and descriptors: a reference cycle
    while gc.get_count()[0] - start < objects:
        made = type("PerCall", (), {})
    return weakref.ref(made)


@pytest.fixture
def streaming_gc():
    """The sidecar's GC settings for one test (yields the thresholds before), restored after it."""
    import gc

    from ml.serving.stream import tune_gc

    before = gc.get_threshold()
    tune_gc()
    try:
        yield before
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_tune_gc_freezes_start_up_and_collects_the_young_generation_less_often(streaming_gc):
    import gc

    from ml.serving.stream import GC_YOUNG

    assert gc.get_threshold() == (GC_YOUNG, *streaming_gc[1:])
    assert gc.get_freeze_count() > 0


def test_collect_young_frees_the_cyclic_garbage_only_once_enough_has_piled_up(streaming_gc):
    import gc

    from ml.serving.stream import GC_IDLE_YOUNG, collect_young

    gc.collect()
    few = _cyclic_garbage(10)
    assert collect_young() == -1 and few() is not None, "a few objects are left for later"
    many = _cyclic_garbage(2 * GC_IDLE_YOUNG)
    assert collect_young() >= 0
    assert few() is None and many() is None, "the garbage is freed"
    assert gc.get_count()[0] < GC_IDLE_YOUNG


def test_collect_young_takes_the_older_generations_in_their_turn(streaming_gc):
    import gc

    from ml.serving.stream import GC_IDLE_YOUNG, collect_young

    every_middle, every_old = gc.get_threshold()[1:]
    taken = []
    for _ in range(every_middle * every_old + every_middle):
        _cyclic_garbage(GC_IDLE_YOUNG)
        taken.append(collect_young())
    assert -1 not in taken
    assert taken.count(1) + taken.count(2) == len(taken) // every_middle, taken  # one in every_middle
    assert 1 <= taken.count(2) <= 2, taken  # one in every_middle * every_old


# Run in a fresh interpreter: threads left running by other tests (clients, servers) would take the GIL
# at hand-overs too and blur the count.
GIL_PROBE = """
import json, sys, threading, time
from ml.serving.stream import SWITCH_INTERVAL_S, tune_threads


def regained(seconds=0.2):
    # how often a thread that keeps giving the GIL up for a C call gets it back from another thread that
    # runs Python code without pause: the sidecar's scorers and its loop. Only hand-overs count (the other
    # thread ran since the last one): when the OS has not run that thread yet, the first takes the GIL
    # straight back, as often as it likes, and that says nothing of the switch interval.
    stop, count, spins = False, 0, 0

    def python_bound():
        nonlocal spins
        while not stop:
            spins += 1

    def returns_from_c():
        nonlocal count
        seen = spins
        while not stop:
            time.sleep(0)  # releases the GIL and must take it back, like each Arrow or XGBoost call
            if spins != seen:
                count, seen = count + 1, spins

    threads = [threading.Thread(target=python_bound), threading.Thread(target=returns_from_c)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop = True
    for thread in threads:
        thread.join()
    return count


sys.setswitchinterval(0.005)  # Python's default
default = regained()
tune_threads()
print(json.dumps({"default": default, "tuned": regained(), "interval": sys.getswitchinterval(),
                  "expected": SWITCH_INTERVAL_S}))
"""


def test_tune_threads_gives_a_thread_back_from_c_the_gil_sooner():
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", GIL_PROBE], cwd=root, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    default, tuned = found["default"], found["tuned"]
    assert found["interval"] == found["expected"]
    # at most one hand-over per interval while the other thread runs Python: ~40 in 0.2 s at 5 ms, ~400 at 0.5 ms
    assert default <= 0.2 / 0.005 * 2, default
    assert tuned >= 3 * default, (default, tuned)


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
