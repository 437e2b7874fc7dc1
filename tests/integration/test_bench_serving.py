"""bench/serving.py keeps working: its quick run measures all three loops, the latency and one sidecar against
two replicas, prints, writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_quick_benchmark_prints_and_writes_its_figures(kafka_bootstrap, mlflow_uri, tmp_path):
    out = tmp_path / "serving.json"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "serving.py"), "--quick", "--out", str(out)],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "passthrough" in run.stdout and "naive" in run.stdout and "p99" in run.stdout and "2 replicas / 1" in run.stdout
    figures = json.loads(out.read_text())
    keys = {"passthrough_eps", "sidecar_eps", "naive_eps", "p50_ms_at_5k", "p99_ms_at_5k", "gil_tuned_vs_default",
            "two_replica_ratio", "date", "cores", "notes"}
    assert keys <= set(figures) and figures["events"] == 50_000
    assert figures["passthrough_eps"] > 0 and figures["naive_eps"] > 0
    assert figures["sidecar_eps"] > 10 * figures["naive_eps"]
    assert 0 < figures["p50_ms_at_5k"] <= figures["p99_ms_at_5k"]
    assert figures["gil_handovers_default"] > 0 and figures["gil_handovers_tuned"] > 0
    assert figures["one_replica_eps"] > 0 and figures["two_replica_eps"] > 0
    assert figures["two_replica_ratio"] == pytest.approx(figures["two_replica_eps"] / figures["one_replica_eps"], rel=1e-2)
    assert figures["two_replica_partitions_min"] == 3, "the two replicas split the six partitions evenly"


@pytest.mark.parametrize("flag", ["--runs", "--events"])
def test_a_count_below_one_is_refused_with_the_flag_named(flag):
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "serving.py"), flag, "0"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 2 and f"{flag} must be at least 1 (got 0)" in run.stderr, run.stderr[-2000:]
