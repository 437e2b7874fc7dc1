"""Hourly offload of Kafka topics to the lake: exact time windows, Parquet, quarantine, manifests."""

from ml.offload.reader import WindowError
from ml.offload.run import offload_hour, window_consumer

__all__ = ["WindowError", "offload_hour", "window_consumer"]
