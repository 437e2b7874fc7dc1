"""Great Expectations validation of offloaded lake hours; drift and training read only valid hours.

    suite = load_suite(contract)                      # expectations/<contract>.json, built by build_suite
    outcome = validate_hour(lake, contract, "telemetry", Window.hour("2026-11-22T13"), suite)
    hours = valid_hours(lake, "telemetry", start, end)

Great Expectations is imported only when a suite runs (it takes seconds to import).
"""

from ml.validation.hour import EMPTY, INVALID, VALID, ValidationOutcome, is_valid, read_hour, valid_hours, validate_hour
from ml.validation.silence import Silence, silence_at
from ml.validation.suite import (
    CRITICAL,
    EXPECTATIONS_DIR,
    WARNING,
    SuiteError,
    build_suite,
    load_suite,
    suite_path,
    write_suite,
)

__all__ = [
    "CRITICAL",
    "EXPECTATIONS_DIR",
    "EMPTY",
    "INVALID",
    "VALID",
    "WARNING",
    "Silence",
    "SuiteError",
    "ValidationOutcome",
    "build_suite",
    "is_valid",
    "load_suite",
    "read_hour",
    "silence_at",
    "suite_path",
    "valid_hours",
    "validate_hour",
    "write_suite",
]
