"""bench/backtest.py --quick runs end to end and reports its figures (it needs no service: in memory)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_quick_benchmark_prints_its_table_and_writes_its_figures(tmp_path):
    out = tmp_path / "backtest.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "backtest.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "baseline: never alone" in proc.stdout and "3 policies (median of 1)" in proc.stdout
    figures = json.loads(out.read_text())
    assert figures["windows"] == 18 and figures["rows_per_window"] == 200 and figures["seconds"] > 0
    assert figures["policies"] == ["never", "every 24", "configured"] and figures["cores"] >= 1
    assert {"date", "notes", "baseline_seconds", "ratio_to_baseline"} <= set(figures)
