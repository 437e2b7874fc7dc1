"""Late labels: how long the truth takes to arrive, and the outcomes waiting for their time.

Every event's outcome is observed after a delay drawn from a clipped log-normal (minutes to hours).
Outcomes wait in a heap of sorted blocks keyed by their earliest observation time and are released
in observation order, so the label topic's record timestamps never go backwards.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from ml.contract import Contract

MINUTE_MS = 60_000


@dataclass(frozen=True)
class LabelDelay:
    """Log-normal delay with the given median and sigma (of its log), clipped to [min, max] minutes."""

    median_minutes: float = 30.0
    sigma: float = 0.8
    min_minutes: float = 1.0
    max_minutes: float = 360.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_minutes <= self.median_minutes <= self.max_minutes or self.median_minutes <= 0:
            raise ValueError(
                f"label delay: need 0 <= min <= median <= max and median > 0 (got min {self.min_minutes:g}, "
                f"median {self.median_minutes:g}, max {self.max_minutes:g} minutes)"
            )
        if self.sigma < 0:
            raise ValueError(f"label delay: sigma must be >= 0 (got {self.sigma:g})")

    @classmethod
    def for_contract(cls, contract: Contract, **overrides: float | None) -> LabelDelay:
        """The contract's expected and maximum delay, with any given value overriding it."""
        label = contract.label
        values = {"median_minutes": label.expected_delay_minutes, "max_minutes": label.max_delay_minutes}
        values.update({k: v for k, v in overrides.items() if v is not None})
        values.setdefault("min_minutes", min(cls.min_minutes, values["median_minutes"]))
        return cls(**values)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n delays in whole milliseconds, within [min, max]."""
        minutes = self.median_minutes * np.exp(self.sigma * rng.standard_normal(n))
        ms = np.round(np.clip(minutes, self.min_minutes, self.max_minutes) * MINUTE_MS).astype(np.int64)
        return np.clip(ms, int(np.ceil(self.min_minutes * MINUTE_MS)), int(self.max_minutes * MINUTE_MS))


class PendingOutcomes:
    """Outcomes not yet observed: event id, device, label, observation time."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int]] = []
        self._blocks: dict[int, tuple[np.ndarray, ...]] = {}
        self._seq = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, observed_ms: np.ndarray, event_id: np.ndarray, device: np.ndarray, label: np.ndarray) -> None:
        if len(observed_ms) == 0:
            return
        order = np.argsort(observed_ms, kind="stable")
        block = (observed_ms[order], event_id[order], device[order], label[order])
        self._blocks[self._seq] = block
        heapq.heappush(self._heap, (int(block[0][0]), self._seq))
        self._seq += 1
        self._size += len(order)

    def pop_due(self, until_ms: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Remove and return (observed_ms, event_id, device, label) observed before until_ms (None: all),
        in observation order."""
        taken: list[tuple[np.ndarray, ...]] = []
        while self._heap and (until_ms is None or self._heap[0][0] < until_ms):
            _, seq = heapq.heappop(self._heap)
            block = self._blocks.pop(seq)
            cut = len(block[0]) if until_ms is None else int(np.searchsorted(block[0], until_ms, side="left"))
            taken.append(tuple(col[:cut] for col in block))
            if cut < len(block[0]):
                self._blocks[seq] = tuple(col[cut:] for col in block)
                heapq.heappush(self._heap, (int(block[0][cut]), seq))
        if not taken:
            return np.empty(0, np.int64), np.empty(0, "S16"), np.empty(0, np.int64), np.empty(0, np.int8)
        merged = [np.concatenate(cols) for cols in zip(*taken)]
        order = np.argsort(merged[0], kind="stable")
        self._size -= len(order)
        return tuple(col[order] for col in merged)  # type: ignore[return-value]
