"""Hourly offload of Kafka topics to the lake: exact time windows, Parquet, quarantine, manifests."""

from ml.offload.run import hour_prefixes, manifest_key, offload_hour, window_consumer
from ml.offload.window import Window, WindowError

__all__ = ["Window", "WindowError", "hour_prefixes", "manifest_key", "offload_hour", "window_consumer"]
