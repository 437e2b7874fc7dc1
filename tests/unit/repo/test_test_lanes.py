"""`make test` runs its tests in two lanes at once: every test file is in exactly one part of one lane,
the unit part of the side lane holds no test that talks to a service, and the tests that start stacks
of their own run in the side lane only."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
IMPORTS_SERVICES = re.compile(r"^\s*(from|import) tests\.integration\b", re.MULTILINE)
MARKED = re.compile(r"^(pytestmark = .*|\s*@)pytest\.mark\.(integration|e2e)\b", re.MULTILINE)


def _lanes() -> dict[str, list[str]]:
    """The lanes' folders, as make itself reads them."""
    out = subprocess.run(["make", "-pn", "lock-check"], cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
    lanes = {}
    for name in ("UNIT_LANE", "OWN_STACK_LANE", "SERVICE_LANE"):
        found = re.search(rf"^{name} :?= ?(.*)$", out, re.MULTILINE)
        assert found, f"{name} is not set in the Makefile"
        lanes[name] = found.group(1).split()
    return lanes


def _in(path: Path, folders: list[str]) -> bool:
    return any(path.is_relative_to(ROOT / folder) for folder in folders)


def test_every_test_file_is_in_exactly_one_lane_and_the_unit_lane_needs_no_service():
    lanes = _lanes()
    files = sorted(ROOT.glob("tests/**/test_*.py"))
    assert len(files) > 100
    own = {ROOT / name for name in lanes["OWN_STACK_LANE"]}
    for path in files:
        homes = [name for name, folders in lanes.items() if _in(path, folders)]
        if path in own:  # the services lane runs without them (--ignore)
            homes.remove("SERVICE_LANE")
        assert len(homes) == 1, f"{path.relative_to(ROOT)} is in lanes {homes}: put its folder in one lane"
    for path in files:
        if _in(path, lanes["UNIT_LANE"]):
            text = path.read_text()  # the services' fixtures and helpers live in tests/integration
            assert not MARKED.search(text) and not IMPORTS_SERVICES.search(text), \
                f"{path.relative_to(ROOT)} talks to the services: it belongs in SERVICE_LANE"


def test_a_subset_runs_alone_and_the_lanes_both_decide_the_exit():
    dry = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
    assert 'if [ -n "" ]; then' in dry  # PYTEST_ARGS empty: both lanes
    assert "[ $units -eq 0 ] && [ $owns -eq 0 ]" in dry and "[ $services -eq 0 ] && [ $sides -eq 0 ]" in dry
    for name in _lanes()["OWN_STACK_LANE"]:
        assert f"--ignore={name}" in dry
    subset = subprocess.run(["make", "-n", "test", "PYTEST_ARGS=tests/unit/repo"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60).stdout
    assert 'if [ -n "tests/unit/repo" ]; then .venv/bin/python -m pytest tests/unit/repo; exit; fi' in subset
