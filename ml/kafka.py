"""Kafka client configurations, one function per client role; each setting's reason is said here, once.

Each function returns a plain dict for confluent_kafka's `Consumer` or `Producer`; the caller adds what
is its own (a `logger`, delivery callbacks). Measurements behind the tuned values: bench/README.md.
"""

from __future__ import annotations

import uuid

# with its queue full the client waits this long before it fetches again; at its default (1 s) the reader
# starved, and records that arrived in that second waited for it
FETCH_QUEUE_BACKOFF_MS = 5


def scoring_consumer(bootstrap: str, group: str, session_timeout_ms: int = 10_000) -> dict:
    """The sidecar's telemetry consumer: one group shared by every replica, which split the partitions.
    The rebalance callbacks (ml.serving.membership) assign and unassign incrementally and commit before a
    partition is given up."""
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,  # offsets are committed only after delivery (ml.serving.offsets)
        "auto.offset.reset": "earliest",  # a new group scores the stream from its start, missing nothing
        # a rebalance moves only the partitions that change owner: the others keep scoring
        "partition.assignment.strategy": "cooperative-sticky",
        # a dead replica's partitions move on once its session times out, and the others hear of it at their
        # next heartbeat: at a tenth of the timeout, the hand-over takes at most 1.1 timeouts and a join
        "session.timeout.ms": session_timeout_ms,
        "heartbeat.interval.ms": max(session_timeout_ms // 10, 500),
        "fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS,
    }


def scoring_producer(bootstrap: str) -> dict:
    """The sidecar's producer of predictions, alerts and dead letters; a batch's offsets are committed
    once all of its records are acknowledged."""
    return {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,  # no duplicates and per-partition order even when a batch is retried
        "compression.type": "lz4",  # cheap on the CPU the scorers share
        "linger.ms": 2,  # a batch of records fills under load; at low traffic a record waits at most 2 ms
        "batch.size": 1_000_000,
        # a whole micro-batch of outputs, several batches in flight, fits in the client's queue
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
    }


def control_reader(bootstrap: str) -> dict:
    """A sidecar's reader of the `control` topic: it reads the whole topic from the beginning at every
    start, so it needs no stored offsets."""
    return {
        "bootstrap.servers": bootstrap,
        "group.id": f"continuum-control-{uuid.uuid4().hex}",  # a group of its own: every replica learns every message
        "enable.auto.commit": False,
    }


def alert_producer(bootstrap: str) -> dict:
    """The sidecar's producer of its own on-call alerts (a model refused): one now and then, so the
    client's defaults."""
    return {"bootstrap.servers": bootstrap}


def window_reader(client_config: dict) -> dict:
    """The offload's reader of one time window, on top of a connection's client configuration
    (`bootstrap.servers` and whatever else the connection sets): no group offsets, nothing committed."""
    return {
        "group.id": "continuum-offload",  # required by the client; never joined or committed
        **client_config,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": False,
        "auto.offset.reset": "error",  # the offsets come from offsets_for_times: one out of range is an error
        # the offload reads a whole hour, so the client's memory must not grow with it: up to 16 MB fetched
        # ahead, in fetches of at most 8 MB
        "fetch.max.bytes": 8 * 1024 * 1024,
        "max.partition.fetch.bytes": 1024 * 1024,
        "queued.min.messages": 200_000,  # the byte bound, not the message count, decides
        "queued.max.messages.kbytes": 16 * 1024,
        "fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS,
    }


def simulator_producer(bootstrap: str) -> dict:
    """The simulator's producer: throughput first, flushed once at the end, failures reported."""
    return {
        "bootstrap.servers": bootstrap,
        "linger.ms": 50,  # large, well-compressed batches: nothing waits on a simulated event
        "batch.size": 1_000_000,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "enable.idempotence": True,  # as the scoring producer's
        "delivery.report.only.error": True,  # only failures come back, to be counted
    }
