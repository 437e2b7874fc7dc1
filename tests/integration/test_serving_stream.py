"""The sidecar's pipelined Kafka loop on the real broker: order, at-least-once commits, failures, no added wait,
no garbage piling up."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from ml.kafka import scoring_consumer, scoring_producer
from ml.serving.metrics import ServingMetrics
from ml.serving.offsets import BatchAck, DeliveryFailed
from ml.serving.stream import Output, Records, StreamLoop
from tests.integration.serving_topics import produce, read_topic

N, KEYS = 6_000, 40


def _loop(bootstrap: str, topic: str, batch_max: int = 250, wait_s: float = 0.005, group: str | None = None,
          **producer) -> tuple[StreamLoop, str]:
    group = group or f"stream-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(scoring_consumer(bootstrap, group))
    loop = StreamLoop(consumer, Producer({**scoring_producer(bootstrap), **producer}), topic,
                      ServingMetrics(), batch_max, wait_s)
    loop.subscribe()
    return loop, group


def _committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in found}


def test_records_are_produced_in_consume_order_and_committed_after_delivery(kafka_bootstrap, topic_factory):
    src, out = topic_factory("stream-in", partitions=3), topic_factory("stream-out", partitions=3)
    produce(kafka_bootstrap, src, [(f"k{i % KEYS}", f"{i}".encode(), None) for i in range(N)])
    loop, group = _loop(kafka_bootstrap, src)
    threads = set()

    def score(batch):  # on the scoring thread, slower than producing: the pipeline must keep the order
        threads.add(threading.current_thread().name)
        time.sleep(0.002)
        return Records(batch.keys, batch.values)

    done = [0]

    def emit(records, output):
        output.many(out, records)
        done[0] += len(records)

    deadline = time.monotonic() + 120
    while done[0] < N and time.monotonic() < deadline:
        loop.step(score, emit)
    loop.close()
    assert done[0] == N
    assert all(name.startswith("score") for name in threads), threads

    rows = read_topic(kafka_bootstrap, out, until=lambda r: len(r) >= N)
    by_key: dict[bytes, list[int]] = {}
    for row in sorted(rows, key=lambda r: (r["partition"], r["offset"])):
        by_key.setdefault(row["key"], []).append(int(row["value"]))
    assert sum(map(len, by_key.values())) == N
    assert all(values == sorted(values) for values in by_key.values()), "one key's records keep their order"
    committed = _committed(kafka_bootstrap, group, src, 3)
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"w-{uuid.uuid4().hex}"})
    high = {p: consumer.get_watermark_offsets(TopicPartition(src, p), timeout=10)[1] for p in range(3)}
    consumer.close()
    assert committed == high, "everything produced and delivered is committed on close"


def test_a_scoring_failure_stops_the_loop_and_commits_only_what_was_produced(kafka_bootstrap, topic_factory):
    src, out = topic_factory("stream-fail-in", partitions=1), topic_factory("stream-fail-out", partitions=1)
    produce(kafka_bootstrap, src, [(b"k", f"{i}".encode(), None) for i in range(2_000)])
    loop, group = _loop(kafka_bootstrap, src, batch_max=100)

    def score(batch):  # the batch holding event 1000 cannot be scored
        if b"1000" in batch.values:
            raise ValueError("model exploded")
        return Records(batch.keys, batch.values)

    with pytest.raises(ValueError, match="model exploded"):
        for _ in range(200):
            loop.step(score, lambda records, output: output.many(out, records))
    with pytest.raises(DeliveryFailed, match="model exploded"):  # close names the batch left unproduced
        loop.close()
    committed = _committed(kafka_bootstrap, group, src, 1)[0]
    produced = read_topic(kafka_bootstrap, out, until=lambda r: len(r) >= committed, timeout_s=10)
    assert 0 < committed <= 1000, committed
    assert [int(r["value"]) for r in produced] == list(range(committed)), \
        "the batches before the failed one were produced, in order, and nothing after it"


def test_after_a_failed_delivery_nothing_past_it_is_committed_and_a_restart_scores_it(kafka_bootstrap, topic_factory):
    """acks [ok..., fail, ok...]: the broker refuses one output record of the third batch (over its 2 MiB
    limit; this producer's own limit is raised so that the broker is the one to refuse it). Stepping on
    and closing commits each partition exactly at that batch's first offset; a restart scores that batch
    and everything after it, and nothing before it."""
    src, out = topic_factory("stream-undelivered-in", partitions=2), topic_factory("stream-undelivered-out")
    produce(kafka_bootstrap, src, [(f"k{i % KEYS}".encode(), b"%d" % i, None) for i in range(1_000)])
    loop, group = _loop(kafka_bootstrap, src, batch_max=100, **{"message.max.bytes": 5_000_000})
    batches = []  # (first offsets, last offsets, event ids) of each batch produced, in order

    def emit(batch, output):
        first, last = {}, {}
        for p, o in zip(batch.partitions.tolist(), batch.offsets.tolist()):
            first.setdefault(p, o), last.__setitem__(p, o)
        batches.append((first, last, set(batch.values)))
        if len(batches) == 3:  # batch A
            output.one(out, os.urandom(3_000_000), b"too-large")
        output.many(out, Records(batch.keys, batch.values))

    with pytest.raises(DeliveryFailed, match="Message size too large"):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            loop.step(lambda batch: batch, emit)
    with pytest.raises(DeliveryFailed, match="Message size too large"):
        loop.close()
    a_first = batches[2][0]
    before = {}
    for _, last, _ in batches[:2]:
        before.update({p: o + 1 for p, o in last.items()})
    committed = {p: o for p, o in _committed(kafka_bootstrap, group, src, 2).items() if o >= 0}
    assert committed == before, "each partition at the end of the batches before the failed one"
    assert {p: committed.get(p, 0) for p in a_first} == a_first, "A's partitions exactly at A's first offsets"

    expected = {b"%d" % i for i in range(1_000)} - set().union(*(ids for _, _, ids in batches[:2]))
    again, _ = _loop(kafka_bootstrap, src, batch_max=100, group=group)
    scored: list[bytes] = []
    deadline = time.monotonic() + 60
    while len(scored) < len(expected) and time.monotonic() < deadline:
        again.step(lambda batch: batch.values, lambda values, output: scored.extend(values))
    again.close()
    assert set(scored) == expected and len(scored) == len(expected)


def test_a_record_refused_when_produced_fails_its_batch_instead_of_raising(kafka_bootstrap, topic_factory):
    """The client refuses a record over its message.max.bytes before sending it: that batch is not
    delivered, like one the broker refused, and the commits stop there."""
    out = topic_factory("stream-refused-out")
    producer = Producer(scoring_producer(kafka_bootstrap))
    ack = BatchAck({0: 9}, {0: 5})
    output = Output(producer, ack)
    output.one(out, b"small", b"k")
    output.many(out, Records([b"k", b"k"], [b"fits", b"x" * 1_500_000]))
    assert producer.flush(30) == 0
    assert ack.error is not None and "too large" in ack.error.lower(), ack.error


def test_at_low_traffic_a_scored_batch_is_produced_without_waiting_for_the_next(kafka_bootstrap, topic_factory):
    src, out = topic_factory("stream-slow-in", partitions=1), topic_factory("stream-slow-out", partitions=1)
    loop, _ = _loop(kafka_bootstrap, src, wait_s=0.5)  # a long batch wait: any wait for the next batch shows
    produced = []
    while not loop.consumer.assignment():
        loop.step(lambda b: b, lambda b, o: None)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 0})
    producer.produce(src, b"one", b"k")
    producer.flush(10)
    sent = time.monotonic()
    deadline = sent + 10
    while not produced and time.monotonic() < deadline:
        loop.step(lambda batch: Records(batch.keys, batch.values),
                  lambda records, output: (output.many(out, records), produced.append(time.monotonic())))
    loop.close()
    assert produced, "the event was never produced"
    # one batch wait (0.5 s) to collect it at most; a second one would mean it waited for a next batch
    assert produced[0] - sent < 0.9, f"produced {produced[0] - sent:.2f} s after it was sent"


def test_at_low_traffic_the_garbage_of_each_predict_call_is_collected_between_batches(kafka_bootstrap,
                                                                                       topic_factory):
    """XGBoost leaves cyclic garbage behind every predict call; with the streaming GC settings it would
    pile up over thousands of small batches and be freed in one long pause, stalling every record."""
    import gc

    import numpy as np

    from ml.runtime import GC_IDLE_YOUNG, serving_tuning
    from tests.integration.serving_models import train_booster

    booster = train_booster(rounds=4)
    features = np.zeros((3, booster.num_features()), dtype=np.float32)
    src, out = topic_factory("stream-gc-in", partitions=1), topic_factory("stream-gc-out", partitions=1)
    loop, _ = _loop(kafka_bootstrap, src)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 0})
    while not loop.consumer.assignment():
        loop.step(lambda b: b, lambda b, o: None)
    tuning = serving_tuning()
    young, emitted = [], [0]

    def score(batch):
        booster.inplace_predict(features)
        return Records(batch.keys, batch.values)

    def emit(records, output):
        output.many(out, records)
        emitted[0] += len(records)

    try:
        for i in range(200):  # one small batch at a time, as at low traffic
            producer.produce(src, b"%d" % i, b"k")
            producer.flush(10)
            deadline = time.monotonic() + 10
            while emitted[0] <= i and time.monotonic() < deadline:
                loop.step(score, emit)
            young.append(gc.get_count()[0])
    finally:
        tuning.restore()
        loop.close()
    assert emitted[0] == 200
    assert max(young) < 2 * GC_IDLE_YOUNG, f"the young generation grew to {max(young)} objects"
