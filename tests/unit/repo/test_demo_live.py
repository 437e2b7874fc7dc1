"""After `make demo`, the live stream goes on in the world the demo left: the drift its new champion
learned stays on. A stream back in the old regime would read as a drift of its own, and the monitor
would page about a world the demo made up."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from ml.contract import load_contract
from ml.settings import load_settings
from ml.simulate.scenarios import parse_scenarios
from tooling.loop.stream import simulator_play
from tooling.loop.timeline import PROFILES

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "docker" / "local"))
from services.live import command  # noqa: E402


def _demo_live_scenario() -> str:
    """The scenario `make demo` starts its live stream with, read from make's own dry run."""
    dry = subprocess.run(["make", "-n", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    lines = [line for line in dry.stdout.splitlines() if line.rstrip().endswith("up live")]
    assert len(lines) == 1, dry.stdout
    found = re.search(r'CONTINUUM_LIVE_SCENARIO="([^"]*)"', lines[0])
    assert found, lines[0]
    return found.group(1)


def test_the_demo_live_stream_plays_the_drift_the_demo_ended_in():
    spec = _demo_live_scenario()
    cmd = command({"CONTINUUM_LIVE_SCENARIO": spec})
    given = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--scenario"]
    live = parse_scenarios(given, origin_ms=0)
    play = simulator_play(load_contract(load_settings().contract), PROFILES["demo"],
                          datetime(2026, 12, 5, 12, tzinfo=timezone.utc), set())
    demo_end = [dataclasses.replace(s, start_ms=None, end_ms=None) for s in play.source.config.scenarios]
    assert sorted(map(repr, live)) == sorted(map(repr, demo_end))
    assert all(s.start_ms is None and s.end_ms is None for s in live), "on from the stream's first event"


def test_a_live_stream_started_by_hand_plays_no_drift_unless_asked():
    assert "--scenario" not in command({})
    assert "CONTINUUM_LIVE_SCENARIO=\"$(SCENARIO)\"" in (ROOT / "Makefile").read_text()
