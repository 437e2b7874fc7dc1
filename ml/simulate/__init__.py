"""The telemetry simulator: a fleet of machines, their late outcomes, drift and bad data, into Kafka.

    sim = Simulator(load_contract("machine_telemetry"), SimConfig(devices=100, rate=20, seed=7))
    for batch in sim.replay(start_ms, end_ms):   # telemetry and outcomes, in time order
        sink.send(batch)

Modules: `physics` (machine telemetry), `generic` (any contract), `scenarios`, `faults`, `labels`,
`encode` (JSON on the wire), `stream` (the simulator), `produce` (Kafka), `cli` (continuum-simulate).
"""

from ml.simulate.labels import LabelDelay
from ml.simulate.scenarios import (
    BadRecords,
    ConceptDrift,
    CovariateDrift,
    NoScenario,
    Scenario,
    ScenarioError,
    SensorFault,
    parse_scenarios,
)
from ml.simulate.stream import Batch, SimConfig, Simulator

__all__ = [
    "BadRecords",
    "Batch",
    "ConceptDrift",
    "CovariateDrift",
    "LabelDelay",
    "NoScenario",
    "Scenario",
    "ScenarioError",
    "SensorFault",
    "SimConfig",
    "Simulator",
    "parse_scenarios",
]
