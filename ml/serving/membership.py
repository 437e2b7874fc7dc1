"""A sidecar replica's place in the consumer group the replicas share: which telemetry partitions it owns,
what it does when they change hands, and how far behind it is on each.

The group assigns cooperative-sticky (`ml.kafka.scoring_consumer`): a rebalance moves only the partitions
that change owner, and every replica keeps scoring the others meanwhile. The callbacks add and remove
exactly the partitions named (incremental assign and unassign). Before a partition is given up, the
replica produces everything it consumed and commits, synchronously, all that the broker acknowledged:
the next owner starts right after the last delivered batch. A replica whose session ran out (it stalled,
or the group gave up on it) can no longer commit: it drops what it has not produced, and the new owner
reads again from the last commit. A replica killed outright commits nothing more; the others take its
partitions once its session times out, from its last commit, so they repeat at most what it delivered
and had not committed yet.

Each replica shows its lag per partition it owns (`continuum_consumer_lag{partition=...}`), and only
those: summed over the replicas, every partition counts once, which is what an autoscaler reads.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaException

from ml.serving.metrics import ServingMetrics

log = logging.getLogger(__name__)

LAG_EVERY_S = 1.0  # the lag is read from the client's cached watermarks: no request to the broker


class Membership:
    """The partitions one replica owns and its rebalance callbacks. `drain` produces what was consumed and
    commits what was delivered (raising if a batch was not); `discard` drops what was consumed and not
    produced and forgets what can no longer be committed; `failed` says a batch was not delivered (then
    nothing is left to commit)."""

    def __init__(self, metrics: ServingMetrics, drain, discard, failed) -> None:
        self.metrics, self._drain, self._discard, self._failed = metrics, drain, discard, failed
        self.assigned: set[int] = set()
        self._lag_at = 0.0

    def on_assign(self, consumer, partitions) -> None:
        consumer.incremental_assign(partitions)  # these are added; the partitions owned already keep going
        self.assigned |= {p.partition for p in partitions}
        log.info("partitions assigned: %s; now own %s", [p.partition for p in partitions], sorted(self.assigned))

    def on_revoke(self, consumer, partitions) -> None:
        try:
            if partitions and not self._failed():
                log.info("partitions revoked: %s; flushing and committing", [p.partition for p in partitions])
                self._drain()  # a failure found here is raised from the consume call that ran the rebalance
        finally:
            consumer.incremental_unassign(partitions)
            self._give_up(partitions)

    def on_lost(self, consumer, partitions) -> None:
        # the group moved on without us (the client loses the whole assignment at once): these offsets can
        # no longer be committed, and the new owners read again from the last commit
        log.warning("partitions lost: %s", [p.partition for p in partitions])
        try:
            self._discard()
        finally:
            consumer.incremental_unassign(partitions)
            self._give_up(partitions)

    def _give_up(self, partitions) -> None:
        gone = {p.partition for p in partitions}
        self.assigned -= gone
        self.metrics.set_lag({p: lag for p, lag in self.metrics.lags.items() if p not in gone})

    def update_lag(self, consumer) -> None:
        """At most once every LAG_EVERY_S: each owned partition's records past this replica's read position."""
        if time.monotonic() - self._lag_at < LAG_EVERY_S:
            return
        self._lag_at = time.monotonic()
        try:
            assigned = consumer.assignment()
            lags = {}
            for tp in consumer.position(assigned) if assigned else []:
                low, high = consumer.get_watermark_offsets(tp, cached=True)
                if high >= 0:
                    lags[tp.partition] = max(high - (tp.offset if tp.offset >= 0 else low), 0)
            self.metrics.set_lag(lags)
        except KafkaException as exc:
            log.debug("consumer lag unavailable: %s", exc)
