"""Which model scores which event: the champion, or an A/B split of devices between versions.

A split comes from a `control` message

    {"type": "traffic", "model": "machine-failure", "split": {"7": 0.9, "8": 0.1}}

and assigns each device (never each event) to a version by a stable hash of its id, so a machine sees
one model for the whole experiment and every sidecar replica agrees. An empty or null split, or the
next promotion or rollback, ends the experiment and the champion scores everything again.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from ml.serving.model import ServingModel

BUCKETS = 10_000


class TrafficError(ValueError):
    """A traffic message is malformed; the message says what is wrong."""


def parse_split(split) -> dict[str, float]:
    """Validate a split {version: weight}; weights are positive and normalised to sum to 1."""
    if split in (None, {}):
        return {}
    if not isinstance(split, dict):
        raise TrafficError(f"split must be an object {{version: weight}}, got {split!r}")
    out: dict[str, float] = {}
    for version, weight in split.items():
        if not str(version).isdigit():
            raise TrafficError(f"split: {version!r} is not a model version number")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
            raise TrafficError(f"split: weight of version {version} must be a positive number, got {weight!r}")
        out[str(version)] = float(weight)
    total = sum(out.values())
    return {version: weight / total for version, weight in sorted(out.items(), key=lambda kv: int(kv[0]))}


def device_bucket(device: str) -> float:
    """A device's stable position in [0, 1): the same on every replica and every restart."""
    return (zlib.crc32(device.encode()) % BUCKETS) / BUCKETS


@dataclass(frozen=True)
class ServingState:
    """Everything one micro-batch is scored with; replaced whole, never changed in place."""

    champion: ServingModel
    split: tuple[tuple[float, ServingModel], ...] = ()  # (cumulative weight, model), ascending
    shadow: ServingModel | None = None
    _buckets: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def models(self) -> list[ServingModel]:
        """Every model that serves live traffic (not the shadow)."""
        return [model for _, model in self.split] if self.split else [self.champion]

    def route(self, devices: list[str]) -> list[tuple[ServingModel, np.ndarray | None]]:
        """(model, row positions) pairs covering every row once; positions None means all rows."""
        if not self.split:
            return [(self.champion, None)]
        cache = self._buckets
        if len(cache) > 1_000_000:
            cache.clear()
        buckets = np.fromiter((cache[d] if d in cache else cache.setdefault(d, device_bucket(d)) for d in devices),
                              dtype=np.float64, count=len(devices))
        edges = np.array([cum for cum, _ in self.split])
        slot = np.minimum(np.searchsorted(edges, buckets, side="right"), len(edges) - 1)
        return [(model, np.flatnonzero(slot == i)) for i, (_, model) in enumerate(self.split)]


def split_state(champion: ServingModel, split: dict[str, ServingModel], weights: dict[str, float],
                shadow: ServingModel | None = None) -> ServingState:
    """A state that sends each device to one of the split's models in proportion to its weight."""
    cum, pairs = 0.0, []
    for version, weight in weights.items():
        cum += weight
        pairs.append((cum, split[version]))
    if pairs:
        pairs[-1] = (1.0, pairs[-1][1])
    return ServingState(champion, tuple(pairs), shadow)
