"""bench/simulate.py keeps working: its quick run prints the table and writes the figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_quick_benchmark_prints_and_writes_its_figures(kafka_bootstrap, tmp_path):
    out = tmp_path / "simulate.json"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "simulate.py"), "--quick", "--out", str(out)],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "naive" in run.stdout and "median" in run.stdout
    figures = json.loads(out.read_text())
    assert {"events_per_s", "baseline_events_per_s", "ratio", "events", "date", "cores", "notes"} <= set(figures)
    assert figures["events"] == 50_000
    assert figures["events_per_s"] > 5 * figures["baseline_events_per_s"] > 0
