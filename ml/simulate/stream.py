"""The simulated stream: telemetry and late outcomes, in time order, as batches ready to produce.

`Simulator.replay` walks a historical range in chunks; each chunk yields its telemetry (good events
plus any bad records, sorted by event time) and then every outcome observed before the chunk's end,
so both topics' record timestamps are non-decreasing. `Simulator.live` does the same against the
clock. Each chunk draws from random streams keyed by (seed, purpose, chunk start): the same seed and
arguments give byte-identical output, and switching a scenario on changes only what it touches.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from ml.contract import Contract, ContractError
from ml.simulate import physics
from ml.simulate.encode import Encoder, EventChunk
from ml.simulate.faults import apply_sensor_faults, bad_records, random_ids
from ml.simulate.generic import GenericGenerator
from ml.simulate.labels import LabelDelay, PendingOutcomes
from ml.simulate.scenarios import BadRecords, Scenario, ScenarioError, SensorFault

SCHEDULE, SENSORS, LABELS, FAULTS, STUCK = 1, 2, 3, 4, 5  # random stream purposes
CHUNK_EVENTS, MIN_CHUNK_MS, MAX_CHUNK_MS = 20_000, 1_000, 300_000


@dataclass(frozen=True)
class SimConfig:
    """How many machines, how often they report (events per second of event time), seed, scenarios."""

    devices: int = 100
    rate: float = 10.0
    seed: int = 0
    label_delay: LabelDelay | None = None  # None: the contract's expected and maximum delay
    scenarios: tuple[Scenario, ...] = ()

    def __post_init__(self) -> None:
        if self.devices < 1 or not self.rate > 0 or self.seed < 0:
            raise ValueError(f"need devices >= 1, rate > 0, seed >= 0 (got {self.devices}, {self.rate}, {self.seed})")


@dataclass
class Batch:
    """Records for one topic ('telemetry' or 'outcomes'), in produce order."""

    topic: str
    keys: list[bytes | None]
    values: list[bytes]
    timestamps: list[int]

    def __len__(self) -> int:
        return len(self.values)


@dataclass
class SimStats:
    """What a run produced: good events, their failures, outcomes sent and still pending, bad records by kind."""

    events: int = 0
    failures: int = 0
    outcomes: int = 0
    outcomes_not_due: int = 0
    bad: dict[str, int] = field(default_factory=dict)


class Simulator:
    """Generates one contract's stream for a fleet; holds the outcomes that are not yet due."""

    def __init__(self, contract: Contract, config: SimConfig) -> None:
        if contract.label.join_key not in (contract.event_id, contract.entity_key):
            raise ContractError("label.join_key: the simulator joins outcomes on the event id or the entity "
                                f"(got {contract.label.join_key!r})")
        kind = physics.MachinePhysics if physics.supports(contract) else GenericGenerator
        self.contract, self.config = contract, config
        self.generator = kind(contract, config.devices, config.seed, config.scenarios)
        self.encoder = Encoder(contract, self.generator.fleet_ids, self.generator.vocab)
        self.label_delay = config.label_delay or LabelDelay.for_contract(contract)
        self.pending = PendingOutcomes()
        self.stats = SimStats()
        self._rate = Fraction(config.rate).limit_denominator(1_000_000)
        self._bad = [s for s in config.scenarios if isinstance(s, BadRecords)]
        self._faults = [self._fault(s) for s in config.scenarios if isinstance(s, SensorFault)]

    def count_before(self, t_ms: int) -> int:
        """Events scheduled before t_ms since the epoch; the events in [a, b) are the difference."""
        return (t_ms * self._rate.numerator) // (1000 * self._rate.denominator)

    def chunk_ms(self) -> int:
        return min(max(math.ceil(CHUNK_EVENTS * 1000 / self.config.rate), MIN_CHUNK_MS), MAX_CHUNK_MS)

    def events(self, t0: int, t1: int) -> EventChunk:
        """The good events with event time in [t0, t1), sorted, sensor faults applied, with their truth."""
        seed = self.config.seed
        n = self.count_before(t1) - self.count_before(t0)
        rng = np.random.default_rng([seed, SCHEDULE, t0])
        ts = t0 + np.sort(rng.integers(0, t1 - t0, size=n, dtype=np.int64))
        device = rng.integers(0, self.config.devices, size=n)
        ids = random_ids(rng, n)
        columns, label = self.generator.generate(ts, device, np.random.default_rng([seed, SENSORS, t0]))
        chunk = EventChunk(ts, ids, device, columns, label)
        apply_sensor_faults(chunk, self._faults)
        return chunk

    def frame(self, start_ms: int, end_ms: int, with_label: bool = True) -> pd.DataFrame:
        """The events of a range as a decoded frame (same events as `replay`), for tests and analysis."""
        chunks = [self.events(t0, t1) for t0, t1 in self._chunks(start_ms, end_ms)] or [self.events(start_ms, start_ms)]
        return self.encoder.frame(EventChunk.concat(chunks), with_label)

    def replay(self, start_ms: int, end_ms: int, until_ms: int | None = None) -> Iterator[Batch]:
        """Telemetry for [start, end) and its outcomes; outcomes observed at or after until_ms stay pending."""
        for t0, t1 in self._chunks(start_ms, end_ms):
            yield from self._telemetry(t0, t1)
            yield from self._outcomes(t1 if until_ms is None else min(t1, until_ms))
        yield from self._outcomes(until_ms)
        self.stats.outcomes_not_due = len(self.pending)

    def live(
        self, duration_ms: int | None = None, tick_ms: int = 200, drain: bool = False,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        sleep: Callable[[float], None] = time.sleep, stop: Callable[[], bool] = lambda: False,
    ) -> Iterator[Batch]:
        """Events stamped with the clock, every tick; outcomes once their delay has really passed.
        With `drain`, keep running after the duration until every outcome is out."""
        t = clock_ms()
        end = None if duration_ms is None else t + duration_ms
        while not stop() and (end is None or t < end):
            sleep(tick_ms / 1000)
            now = clock_ms()
            t1 = now if end is None else min(now, end)
            if t1 > t:
                yield from self._telemetry(t, t1)
                t = t1
            yield from self._outcomes(now + 1)
        while drain and len(self.pending) and not stop():
            sleep(tick_ms / 1000)
            yield from self._outcomes(clock_ms() + 1)
        self.stats.outcomes_not_due = len(self.pending)

    def _chunks(self, start_ms: int, end_ms: int) -> Iterator[tuple[int, int]]:
        step = self.chunk_ms()
        for t0 in range(start_ms, end_ms, step):
            yield t0, min(t0 + step, end_ms)

    def _telemetry(self, t0: int, t1: int) -> Iterator[Batch]:
        chunk = self.events(t0, t1)
        if not len(chunk):
            return
        values, keys, ts = self.encoder.telemetry(chunk), self.encoder.keys(chunk.device), chunk.ts_ms
        delays = self.label_delay.sample(np.random.default_rng([self.config.seed, LABELS, t0]), len(chunk))
        self.pending.add(chunk.ts_ms + delays, chunk.event_id, chunk.device, chunk.label)
        self.stats.events += len(chunk)
        self.stats.failures += int(chunk.label.sum())
        for i, scenario in enumerate(self._bad):
            rng = np.random.default_rng([self.config.seed, FAULTS, t0, i])
            bad_ts, bad_keys, bad_values, kinds = bad_records(self.contract, scenario, chunk, values, keys, rng)
            if kinds:
                order = np.argsort(np.concatenate([ts, bad_ts]), kind="stable")
                ts = np.concatenate([ts, bad_ts])[order]
                joined_keys, joined_values = keys + bad_keys, values + bad_values
                keys, values = [joined_keys[j] for j in order], [joined_values[j] for j in order]
                for kind in kinds:
                    self.stats.bad[kind] = self.stats.bad.get(kind, 0) + 1
        yield Batch("telemetry", keys, values, ts.tolist())

    def _outcomes(self, until_ms: int | None) -> Iterator[Batch]:
        observed, ids, device, label = self.pending.pop_due(until_ms)
        if len(observed):
            self.stats.outcomes += len(observed)
            values = self.encoder.outcomes(ids, device, label, observed)
            yield Batch("outcomes", self.encoder.keys(device), values, observed.tolist())

    def _fault(self, fault: SensorFault) -> tuple[SensorFault, int, dict[str, float]]:
        """Resolve a sensor fault's machine and fields, and the values it freezes at (read at its onset)."""
        ids = self.generator.fleet_ids
        device = ids.index(fault.device) if fault.device in ids else (0 if not fault.device else -1)
        if device < 0:
            raise ScenarioError(f"scenario sensor_fault: no device {fault.device!r} (fleet is {ids[0]}..{ids[-1]})")
        numeric = [f.name for f in self.contract.numeric_features]
        unknown = [name for name in fault.fields if name not in numeric]
        if unknown:
            raise ScenarioError(f"scenario sensor_fault: {unknown[0]!r} is not a numeric feature "
                                f"({', '.join(numeric)})")
        onset = np.array([fault.start_ms or 0], dtype=np.int64)
        rng = np.random.default_rng([self.config.seed, STUCK, device])
        columns, _ = self.generator.generate(onset, np.array([device]), rng)
        return fault, device, {name: float(columns[name][0]) for name in (fault.fields or numeric)}
