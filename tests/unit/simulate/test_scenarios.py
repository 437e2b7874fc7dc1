"""The --scenario syntax and time arguments: what parses, and the errors that say what would."""

from __future__ import annotations

import numpy as np
import pytest

from ml.simulate.scenarios import (
    BadRecords,
    ConceptDrift,
    CovariateDrift,
    ScenarioError,
    SensorFault,
    parse_duration,
    parse_scenario,
    parse_scenarios,
    parse_time,
)

ORIGIN = parse_time("2026-11-20T00:00Z")
HOUR = 3_600_000


def test_times_in_every_accepted_form():
    assert parse_time("2026-11-22T13:00:00.123Z") == 1_795_352_400_123
    assert parse_time("2026-11-22T13:00:00.123") == 1_795_352_400_123  # naive means UTC
    assert parse_time("2026-11-22T14:00:00.123+01:00") == 1_795_352_400_123
    assert parse_time("now", now_ms=5 * HOUR) == 5 * HOUR
    assert parse_time("now-2h", now_ms=5 * HOUR) == 3 * HOUR
    assert parse_time("+90m", origin_ms=HOUR) == HOUR + 90 * 60_000
    assert parse_duration("1.5d") == 36 * HOUR and parse_duration("500ms") == 500


def test_scenarios_with_windows_and_parameters():
    cov = parse_scenario("covariate@2026-11-20T12:00Z:share=0.5,heat_k=4", ORIGIN)
    assert cov == CovariateDrift(start_ms=ORIGIN + 12 * HOUR, share=0.5, heat_k=4.0)
    concept = parse_scenario("concept@+2h..+5h:firmware=3.0.0", ORIGIN)
    assert (concept.start_ms, concept.end_ms, concept.firmware) == (ORIGIN + 2 * HOUR, ORIGIN + 5 * HOUR, "3.0.0")
    bad = parse_scenario("bad_records:rate=0.02,kinds=malformed+oversized", ORIGIN)
    assert bad == BadRecords(rate=0.02, kinds=("malformed", "oversized"))
    fault = parse_scenario("sensor_fault@+1h:device=dev-0003,mode=null,fields=torque_nm", ORIGIN)
    assert fault == SensorFault(start_ms=ORIGIN + HOUR, device="dev-0003", mode="null", fields=("torque_nm",))
    assert parse_scenarios(["none", "covariate", "none"], ORIGIN) == (CovariateDrift(),)


def test_active_is_half_open():
    s = ConceptDrift(start_ms=10, end_ms=20)
    assert s.active(np.array([9, 10, 19, 20])).tolist() == [False, True, True, False]
    assert CovariateDrift().active(np.array([0, 10**13])).all()


@pytest.mark.parametrize(
    "spec, message",
    [
        ("drift", "unknown scenario 'drift'; known: none, covariate, concept, sensor_fault, bad_records"),
        ("covariate:heat=3", "unknown parameter 'heat' for covariate (known: site, share, heat_k, speed_rpm)"),
        ("covariate:share=lots", "share must be a number (got 'lots')"),
        ("covariate:share=2", "share must be within [0, 1]"),
        ("covariate@tuesday", "cannot read 'tuesday' as a time"),
        ("concept@+5h..+2h", "end must be after start"),
        ("sensor_fault:mode=loud", "mode must be stuck or null"),
        ("bad_records:kinds=malformed+rude", "unknown kinds ['rude']"),
        ("Covariate", "expected name[@start[..end]][:key=value,...]"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(ScenarioError) as err:
        parse_scenario(spec, ORIGIN)
    assert message in str(err.value)
    assert "--scenario" in str(err.value)
