"""Machine-tool telemetry after the physics of the AI4I 2020 predictive-maintenance data set.

Machines of three quality types (L/M/H) run at several plants. Air temperature follows the plant and
the time of day; the process runs about 10 K hotter; speed and torque come from a power demand;
tools wear with use and are replaced at end of life. A machine fails through heat dissipation
(small temperature difference at low speed), power (too low or too high), overstrain (wear times
torque above a type-dependent limit), tool wear, or at random, for a few percent of readings.
Everything is vectorized per chunk: no Python loop runs per event.
"""

from __future__ import annotations

import numpy as np

from ml.contract import Contract
from ml.simulate.scenarios import ConceptDrift, CovariateDrift, Scenario, ScenarioError

FIELDS = ("device_type", "site", "air_temperature_k", "process_temperature_k", "rotational_speed_rpm",
          "torque_nm", "tool_wear_min", "vibration_mm_s")
TYPE_SHARE = {"L": 0.5, "M": 0.3, "H": 0.2}
WEAR_PER_HOUR = {"L": 14.0, "M": 11.0, "H": 9.0}  # tool-wear minutes per hour of operation
OSF_LIMIT = {"L": 11_000.0, "M": 12_000.0, "H": 13_000.0}  # minNm
SITE_HEAT = {"plant-a": 0.0, "plant-b": -1.5, "plant-c": 1.0, "plant-d": 0.5}  # K; other sites: drift only
FIRMWARE = "1.4.2"
HDF_K, HDF_RPM, PWF_LOW_W, PWF_HIGH_W, TWF_MIN = 8.6, 1380.0, 3500.0, 9000.0, 200.0
VIBRATION_DROPOUT = 0.002
RPM_TO_RAD_S = 2 * np.pi / 60


def supports(contract: Contract) -> bool:
    """True when the contract has the machine-telemetry fields this physics writes."""
    names = set(contract.raw_columns)
    if not set(FIELDS) <= names or contract.feature("device_type").kind != "categorical":
        return False
    types, sites = set(contract.categories("device_type")), set(contract.categories("site"))
    return set(TYPE_SHARE) <= types and set(SITE_HEAT) <= sites


class MachinePhysics:
    """A fleet of machines and the function that turns (time, machine) into readings and the truth."""

    def __init__(self, contract: Contract, devices: int, seed: int, scenarios: tuple[Scenario, ...] = ()) -> None:
        rng = np.random.default_rng([seed, 0])
        types, sites = contract.categories("device_type"), contract.categories("site")
        for s in scenarios:
            if isinstance(s, CovariateDrift) and s.site not in sites:
                raise ScenarioError(f"scenario covariate: site {s.site!r} is not allowed by the contract "
                                    f"({', '.join(sites)})")
        self.contract, self.scenarios = contract, scenarios
        self.fleet_ids = tuple(f"dev-{i:04d}" for i in range(devices))
        type_names = rng.choice(list(TYPE_SHARE), size=devices, p=list(TYPE_SHARE.values()))
        self.type_code = np.array([types.index(t) for t in type_names], dtype=np.int16)
        normal_sites = list(SITE_HEAT)
        site_names = [normal_sites[i % len(normal_sites)] for i in rng.permutation(devices)]
        self.site_code = np.array([sites.index(s) for s in site_names], dtype=np.int16)
        self.site_heat = np.array([SITE_HEAT[s] for s in site_names])
        self.base_rpm = rng.normal(1540.0, 50.0, devices)
        self.tool_life = rng.uniform(215.0, 250.0, devices)
        self.wear_phase = rng.uniform(0.0, 1.0, devices)
        self.wear_per_ms = np.array([WEAR_PER_HOUR[t] for t in type_names]) / 3_600_000
        self.osf_limit = np.array([OSF_LIMIT[t] for t in type_names])
        self.drift_draw = rng.uniform(size=devices)  # below a scenario's share: this machine is affected
        firmware = [s.firmware for s in scenarios if isinstance(s, ConceptDrift)]
        self.vocab = {"device_type": types, "site": sites, "firmware": tuple(dict.fromkeys([FIRMWARE, *firmware]))}
        self._sites = sites

    def generate(self, ts_ms: np.ndarray, device: np.ndarray,
                 rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Readings (numeric float64, categorical/firmware as int16 codes) and the 0/1 failure truth.

        Random draws do not depend on the scenarios, so switching a scenario on changes only what it
        is meant to change (concept drift leaves every reading identical)."""
        n = len(ts_ms)
        noise = rng.standard_normal((6, n))
        uniform = rng.random((6, n))
        hour = (ts_ms % 86_400_000) / 3_600_000
        site = self.site_code[device].copy()
        heat = self.site_heat[device] + 1.5 * np.sin(2 * np.pi * (hour - 9.0) / 24.0)
        rpm_shift = np.zeros(n)
        for s in self.scenarios:
            if isinstance(s, CovariateDrift):
                on = s.active(ts_ms)
                moved = on & (self.drift_draw[device] < s.share)
                site[moved] = self._sites.index(s.site)
                heat[moved] += s.heat_k
                rpm_shift[on] += s.speed_rpm
        air = np.round(300.0 + heat + 0.7 * noise[0], 1)
        process = np.round(air + 10.0 + 1.0 * noise[1], 1)
        rpm = np.round(np.clip(self.base_rpm[device] + rpm_shift + 170.0 * noise[2], 1100.0, 3000.0))
        power_demand = np.clip(6300.0 + 1100.0 * noise[3], 800.0, 14_000.0)
        torque = np.round(np.clip(power_demand / (rpm * RPM_TO_RAD_S), 3.0, 95.0), 1)
        life = self.tool_life[device]
        wear = np.floor((ts_ms * self.wear_per_ms[device] + self.wear_phase[device] * life) % life)
        vibration = np.round(0.9 + 0.006 * wear + 0.03 * np.maximum(torque - 40.0, 0.0)
                             + 0.0005 * np.abs(rpm - 1500.0) + 0.25 * np.abs(noise[4]), 2)
        vibration[uniform[5] < VIBRATION_DROPOUT] = np.nan
        columns = {
            "device_type": self.type_code[device], "site": site, "air_temperature_k": air,
            "process_temperature_k": process, "rotational_speed_rpm": rpm, "torque_nm": torque,
            "tool_wear_min": wear, "vibration_mm_s": vibration,
            "firmware": np.zeros(n, dtype=np.int16),
        }
        return columns, self._failure(ts_ms, device, columns, uniform)

    def _failure(self, ts_ms, device, c, uniform) -> np.ndarray:
        """The truth: any failure mode firing; concept drift moves the heat and overstrain limits."""
        hdf_k = np.full(len(ts_ms), HDF_K)
        osf_limit = self.osf_limit[device].copy()
        for s in self.scenarios:
            if isinstance(s, ConceptDrift):
                hit = s.active(ts_ms) & (self.drift_draw[device] < s.share)
                hdf_k[hit] = s.hdf_k
                osf_limit[hit] *= s.osf_factor
                c["firmware"][hit] = self.vocab["firmware"].index(s.firmware)
        temp_diff = c["process_temperature_k"] - c["air_temperature_k"]
        power = c["torque_nm"] * c["rotational_speed_rpm"] * RPM_TO_RAD_S
        heat_dissipation = (temp_diff < hdf_k) & (c["rotational_speed_rpm"] < HDF_RPM) & (uniform[0] < 0.9)
        power_failure = ((power < PWF_LOW_W) | (power > PWF_HIGH_W)) & (uniform[1] < 0.9)
        overstrain = (c["tool_wear_min"] * c["torque_nm"] > osf_limit) & (uniform[2] < 0.9)
        tool_wear = (c["tool_wear_min"] >= TWF_MIN) & (uniform[3] < 0.05)
        random_failure = uniform[4] < 0.001
        return (heat_dissipation | power_failure | overstrain | tool_wear | random_failure).astype(np.int8)
