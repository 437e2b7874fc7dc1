"""Kafka connection -> a consumer that reads by time window (partitions assigned, nothing committed)."""

from __future__ import annotations

from airflow.providers.apache.kafka.hooks.base import KafkaBaseHook

from ml.offload import window_consumer


class KafkaWindowReaderHook(KafkaBaseHook):
    """The provider's Kafka connection (`kafka_default`), as a consumer for `ml.offload`.

    The offload positions itself with offsets_for_times and never joins a group or commits, so reruns
    and backfills need no stored state; the connection only supplies the client configuration.
    """

    hook_name = "Apache Kafka (time-window reader)"

    def _get_client(self, config):
        return window_consumer(config)
