"""Process tuning is applied by entry points only, and put back when used as a context manager; the
offload library leaves the process as it found it."""

from __future__ import annotations

import gc
import sys
import weakref
from datetime import timedelta

import orjson
import pyarrow as pa
import pytest
from confluent_kafka import Message, TopicPartition

from ml.contract import load_contract
from ml.lake import Lake
from ml.lake.window import Window
from ml.offload import offload_hour
from ml.runtime import GC_IDLE_YOUNG, collect_young, offload_tuning, serving_tuning

CONTRACT = load_contract("machine_telemetry")
HOUR = Window.hour("2026-11-22T13")


def process_state() -> dict:
    """What the tuning may change, as a test sees it."""
    return {"collecting": gc.isenabled(), "thresholds": gc.get_threshold(), "frozen": gc.get_freeze_count(),
            "switch_interval": sys.getswitchinterval(), "arrow_pool": pa.default_memory_pool().backend_name}


def young_collections(objects: int = 10_000) -> int:
    """How many collections run while `objects` container objects are made (and kept)."""
    runs = []

    def count(phase, info):
        if phase == "start":
            runs.append(info["generation"])
    gc.callbacks.append(count)
    try:
        kept = [[] for _ in range(objects)]
    finally:
        gc.callbacks.remove(count)
    assert len(kept) == objects
    return len(runs)


def test_serving_tuning_holds_inside_the_block_and_is_put_back_after_it():
    before = process_state()
    made_before = object.__new__(type("StartUp", (), {}))  # a container the collector tracks
    assert young_collections() > 0, "Python's default collects the young generation every 700 allocations"
    with serving_tuning():
        assert young_collections() == 0, "the young generation waits for far more allocations"
        assert not any(o is made_before for o in gc.get_objects()), "start-up objects are frozen out of reach"
        assert sys.getswitchinterval() < before["switch_interval"]
    assert process_state() == before
    assert young_collections() > 0


def test_serving_tuning_is_put_back_when_the_block_fails():
    before = process_state()
    with pytest.raises(RuntimeError):
        with serving_tuning():
            raise RuntimeError("stream failed")
    assert process_state() == before


@pytest.mark.parametrize("collecting", [True, False])
def test_offload_tuning_pauses_the_collector_and_puts_everything_back(collecting):
    if not collecting:
        gc.disable()
    try:
        before = process_state()
        with offload_tuning():
            assert not gc.isenabled()
            assert pa.default_memory_pool().backend_name in ("jemalloc", before["arrow_pool"])
        assert process_state() == before
        with pytest.raises(RuntimeError):
            with offload_tuning():
                raise RuntimeError("offload failed")
        assert process_state() == before
    finally:
        gc.enable()


@pytest.fixture
def streaming_gc():
    with serving_tuning():
        yield


def _cyclic_garbage(objects: int) -> weakref.ref:
    """About `objects` objects that only the cyclic collector can free (classes, as XGBoost makes one per
    predict call); returns a weak reference to one of them."""
    start = gc.get_count()[0]
    made = type("PerCall", (), {})  # a class, its mro, dict and descriptors: a reference cycle
    while gc.get_count()[0] - start < objects:
        made = type("PerCall", (), {})
    return weakref.ref(made)


def test_collect_young_frees_the_cyclic_garbage_only_once_enough_has_piled_up(streaming_gc):
    gc.collect()
    few = _cyclic_garbage(10)
    assert collect_young() == -1 and few() is not None, "a few objects are left for later"
    many = _cyclic_garbage(2 * GC_IDLE_YOUNG)
    assert collect_young() >= 0
    assert few() is None and many() is None, "the garbage is freed"
    assert gc.get_count()[0] < GC_IDLE_YOUNG


def test_collect_young_takes_the_older_generations_in_their_turn(streaming_gc):
    every_middle, every_old = gc.get_threshold()[1:]
    taken = []
    for _ in range(every_middle * every_old + every_middle):
        _cyclic_garbage(GC_IDLE_YOUNG)
        taken.append(collect_young())
    assert -1 not in taken
    assert taken.count(1) + taken.count(2) == len(taken) // every_middle, taken  # one in every_middle
    assert 1 <= taken.count(2) <= 2, taken  # one in every_middle * every_old


class HourOnOnePartition:
    """An in-memory topic of one partition holding `records` outcomes inside HOUR, read the way the
    offload reads a broker; notes the process state whenever the offload consumes."""

    def __init__(self, records: int) -> None:
        every = (HOUR.end_ms - HOUR.start_ms) // records
        self.messages = []
        for i in range(records):
            at = HOUR.start + timedelta(milliseconds=i * every)
            value = orjson.dumps({"event_id": f"e{i}", "device_id": "dev-1", "failure": i % 2,
                                  "observed_at": at.isoformat()})
            self.messages.append(Message(topic="outcomes", partition=0, offset=i, key=b"dev-1", value=value,
                                         timestamp=(1, HOUR.start_ms + i * every)))
        self.position, self.seen = 0, []

    def list_topics(self, topic, timeout):
        meta = type("Meta", (), {"error": None, "partitions": {0: None}})
        return type("Cluster", (), {"topics": {topic: meta}})

    def offsets_for_times(self, partitions, timeout):
        stamps = [m.timestamp()[1] for m in self.messages]
        return [TopicPartition(tp.topic, tp.partition, next((i for i, t in enumerate(stamps) if t >= tp.offset), -1))
                for tp in partitions]

    def get_watermark_offsets(self, partition, timeout=None):
        return 0, len(self.messages)

    def assign(self, partitions):
        self.position = partitions[0].offset

    def consume(self, n, timeout):
        self.seen.append(process_state())
        batch = self.messages[self.position:self.position + min(n, 5)]
        self.position += len(batch)
        return batch

    def incremental_unassign(self, partitions):
        pass

    def unassign(self):
        pass


def _offload(lake_dir, **tuning) -> tuple[dict, HourOnOnePartition]:
    consumer = HourOnOnePartition(20)
    manifest = offload_hour(consumer, Lake(str(lake_dir)), CONTRACT, "outcomes", "outcomes", HOUR,
                            timedelta(0), batch_size=5, **tuning)
    return manifest, consumer


def test_the_offload_library_leaves_the_process_as_it_found_it(tmp_path):
    before = process_state()
    manifest, consumer = _offload(tmp_path)
    assert manifest["rows"] == 20 and manifest["quarantined"] == 0
    assert consumer.seen and all(state == before for state in consumer.seen), "nothing changed while it ran"
    assert process_state() == before


def test_an_entry_point_tunes_the_offload_and_gets_the_process_back_as_it_was(tmp_path):
    before = process_state()
    manifest, consumer = _offload(tmp_path, tuning=offload_tuning)
    assert manifest["rows"] == 20
    assert consumer.seen and not any(state["collecting"] for state in consumer.seen), "tuned while it read"
    assert process_state() == before


def test_a_child_whose_parent_is_not_the_one_named_exits_at_once_and_one_whose_parent_is_goes_on():
    import os
    import subprocess
    import sys

    code = "import os, sys; from ml.runtime import die_with_parent; die_with_parent(int(sys.argv[1])); print('on')"
    gone = subprocess.run([sys.executable, "-c", code, str(os.getpid() + 10**6)], capture_output=True, text=True,
                          timeout=60)
    here = subprocess.run([sys.executable, "-c", code, str(os.getpid())], capture_output=True, text=True, timeout=60)
    assert (gone.returncode, gone.stdout) == (0, "")
    assert (here.returncode, here.stdout.strip()) == (0, "on")
