"""The loop's view of the serving sidecar: where its consumer group starts, which champion it serves,
and whether it has scored every telemetry event sent so far. The loop reads and sets the group's offsets
without ever joining the group, and asks the sidecar's health endpoint for the version it serves."""

from __future__ import annotations

import time
from datetime import datetime

import requests
from confluent_kafka import Consumer, TopicPartition

from tooling.loop.timeline import LoopError


class Sidecar:
    """The running sidecar at `serving_url`, behind the consumer group `settings.serving_group`."""

    def __init__(self, settings, serving_url: str, timeout_s: float) -> None:
        self.settings, self.serving_url, self.timeout_s = settings, serving_url, timeout_s

    def start_serving_at(self, at: datetime) -> dict[int, int]:
        """Commit the sidecar group's telemetry offsets at the first record of event time `at`: a model
        first deployed then serves the events from then on. The group must have no member yet (the
        sidecar joins it once it has a champion)."""
        topic, consumer = self.settings.topic_telemetry, self._serving_group()
        try:
            partitions = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
            wanted = [TopicPartition(topic, p, int(at.timestamp() * 1000)) for p in partitions]
            found = consumer.offsets_for_times(wanted, timeout=10)
            offsets = [TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else
                                      consumer.get_watermark_offsets(tp, timeout=10)[1]) for tp in found]
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
            except Exception as exc:  # noqa: BLE001 - the broker's refusal, said with what to do
                raise LoopError(f"cannot set the sidecar group {self.settings.serving_group}'s offsets ({exc}); "
                                f"it must not be consuming yet: `continuum-loop reset` first") from None
            return {tp.partition: tp.offset for tp in offsets}
        finally:
            consumer.close()

    def wait_serving(self, version: str) -> None:
        """Until the sidecar reports itself ready with `version` as champion and has scored every event."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                body = requests.get(f"{self.serving_url}/healthz", timeout=5).json()
            except (requests.RequestException, ValueError):
                body = {}
            if body.get("ready") and body.get("champion") == version:
                self.wait_scored()
                return
            if time.monotonic() > deadline:
                raise LoopError(f"the sidecar at {self.serving_url} does not serve v{version}: {body}; "
                                f"see .local/logs/serving.log")
            time.sleep(1)

    def wait_scored(self) -> None:
        """Until the sidecar's consumer group has committed every telemetry offset."""
        topic, consumer = self.settings.topic_telemetry, self._serving_group()
        try:
            partitions = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
            deadline = time.monotonic() + self.timeout_s
            while True:
                committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
                lag = sum(max(0, consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)[1]
                              - max(tp.offset, 0)) for tp in committed)
                if lag == 0:
                    return
                if time.monotonic() > deadline:
                    raise LoopError(f"the sidecar still has {lag} events to score; see .local/logs/serving.log")
                time.sleep(0.2)
        finally:
            consumer.close()

    def _serving_group(self) -> Consumer:
        """A client of the sidecar's consumer group that never joins it: it reads or sets its offsets."""
        return Consumer({"bootstrap.servers": self.settings.kafka_bootstrap, "group.id": self.settings.serving_group,
                         "enable.auto.commit": False})
