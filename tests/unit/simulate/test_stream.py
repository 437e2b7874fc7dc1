"""The stream without Kafka: determinism, exact counts, time order, one late outcome per event."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from ml.contract import load_contract
from ml.simulate import BadRecords, CovariateDrift, LabelDelay, SensorFault, SimConfig, Simulator
from ml.simulate.labels import PendingOutcomes
from ml.simulate.scenarios import parse_time

MACHINE = load_contract("machine_telemetry")
WIND = load_contract(str(Path(__file__).resolve().parents[2] / "contracts" / "wind_turbine.yaml"))
START = parse_time("2026-11-01T00:00Z")
HOUR = 3_600_000
DELAY = LabelDelay(median_minutes=20, sigma=1.0, min_minutes=2, max_minutes=90)
SCENARIOS = (CovariateDrift(start_ms=START + HOUR), BadRecords(rate=0.01), SensorFault(mode="null"))


def replay(seed=1, contract=MACHINE, scenarios=SCENARIOS, start=START, end=START + 2 * HOUR, **kw):
    sim = Simulator(contract, SimConfig(devices=30, rate=3.0, seed=seed, label_delay=DELAY, scenarios=scenarios))
    return sim, list(sim.replay(start, end, **kw))


def wire(batches) -> bytes:
    return b"".join(k or b"-" for b in batches for k in b.keys) + b"".join(v for b in batches for v in b.values)


def test_same_seed_same_bytes_other_seed_other_bytes():
    _, first = replay(seed=1)
    _, again = replay(seed=1)
    _, other = replay(seed=2)
    assert wire(first) == wire(again)
    assert [b.timestamps for b in first] == [b.timestamps for b in again]
    assert wire(first) != wire(other)


def test_counts_are_exact_and_match_the_rate():
    sim, batches = replay(scenarios=())
    telemetry = [v for b in batches if b.topic == "telemetry" for v in b.values]
    assert len(telemetry) == sim.stats.events == 3 * 2 * 3600
    assert sim.count_before(START + 2 * HOUR) - sim.count_before(START) == len(telemetry)


@pytest.mark.parametrize("contract", [MACHINE, WIND], ids=["machine", "wind"])
def test_each_event_gets_one_outcome_after_a_delay_within_bounds(contract):
    sim, batches = replay(contract=contract, scenarios=())
    events = {}
    for b in batches:
        if b.topic == "telemetry":
            for key, value, ts in zip(b.keys, b.values, b.timestamps):
                event = orjson.loads(value)
                assert parse_time(event[contract.event_time]) == ts
                assert event[contract.event_time].endswith("Z") and len(event[contract.event_time]) == 24
                assert key.decode() == event[contract.entity_key]
                events[event[contract.event_id]] = (ts, event[contract.entity_key])
    label = contract.label
    seen = set()
    for b in batches:
        if b.topic != "outcomes":
            continue
        for key, value, ts in zip(b.keys, b.values, b.timestamps):
            outcome = orjson.loads(value)
            event_ts, entity = events[outcome[label.join_key]]
            assert parse_time(outcome[label.observed_at]) == ts
            assert DELAY.min_minutes * 60_000 <= ts - event_ts <= DELAY.max_minutes * 60_000
            assert key.decode() == outcome[contract.entity_key] == entity and outcome[label.field] in (0, 1)
            assert outcome[label.join_key] not in seen
            seen.add(outcome[label.join_key])
    assert seen == set(events) and sim.stats.outcomes == len(events) and len(sim.pending) == 0


def test_each_topic_is_in_time_order_and_outcomes_follow_their_chunk():
    _, batches = replay(end=START + 6 * HOUR)
    for topic in ("telemetry", "outcomes"):
        ts = [t for b in batches if b.topic == topic for t in b.timestamps]
        assert ts == sorted(ts)
    chunk = Simulator(MACHINE, SimConfig(rate=3.0)).chunk_ms()
    produced_until = START
    for b in batches[:-1]:  # while replaying, outcomes trail the telemetry by at most one chunk
        if b.topic == "telemetry":
            produced_until = b.timestamps[-1]
        else:
            assert b.timestamps[-1] < produced_until + chunk
    assert batches[-1].topic == "outcomes" and batches[-1].timestamps[-1] > START + 6 * HOUR  # the tail


def test_outcomes_not_yet_observed_stay_pending():
    sim, batches = replay(scenarios=(), until_ms=START + 2 * HOUR)
    observed = [t for b in batches if b.topic == "outcomes" for t in b.timestamps]
    assert max(observed) < START + 2 * HOUR
    assert sim.stats.outcomes_not_due == len(sim.pending) > 0
    assert sim.stats.outcomes + sim.stats.outcomes_not_due == sim.stats.events


def test_live_stamps_events_with_the_clock_and_waits_for_outcomes():
    clock = {"now": START}

    def sleep(seconds):
        clock["now"] += int(seconds * 1000)

    sim = Simulator(MACHINE, SimConfig(devices=5, rate=50.0, label_delay=LabelDelay(0.05, 0.5, 0.02, 0.1)))
    batches = []
    for batch in sim.live(duration_ms=10_000, tick_ms=200, drain=True, clock_ms=lambda: clock["now"], sleep=sleep):
        if batch.topic == "outcomes":  # released only once the clock has passed their observation time
            assert max(batch.timestamps) <= clock["now"]
        else:
            assert min(batch.timestamps) >= clock["now"] - 200 and max(batch.timestamps) < clock["now"]
        batches.append(batch)
    telemetry = [t for b in batches if b.topic == "telemetry" for t in b.timestamps]
    assert len(telemetry) == sim.count_before(START + 10_000) - sim.count_before(START) == 500
    assert START <= min(telemetry) and max(telemetry) < START + 10_000
    assert sim.stats.outcomes == 500 and sim.stats.outcomes_not_due == 0


def test_pending_outcomes_come_out_in_observation_order():
    pending = PendingOutcomes()
    rng = np.random.default_rng(0)
    for _ in range(5):
        obs = rng.integers(0, 1000, 50)
        pending.add(obs, np.arange(50).astype("S16"), np.zeros(50, int), np.zeros(50, np.int8))
    first = pending.pop_due(500)
    rest = pending.pop_due()
    assert (np.diff(first[0]) >= 0).all() and (first[0] < 500).all()
    assert (np.diff(rest[0]) >= 0).all() and (rest[0] >= 500).all()
    assert len(first[0]) + len(rest[0]) == 250 and len(pending) == 0


def test_label_delay_bounds_and_contract_defaults():
    delay = LabelDelay.for_contract(MACHINE)
    assert (delay.median_minutes, delay.max_minutes) == (30, 360)
    ms = delay.sample(np.random.default_rng(0), 100_000)
    assert ms.min() >= 60_000 and ms.max() <= 360 * 60_000
    assert np.median(ms) == pytest.approx(30 * 60_000, rel=0.05)
    with pytest.raises(ValueError, match="min <= median <= max"):
        LabelDelay(median_minutes=10, max_minutes=5)
