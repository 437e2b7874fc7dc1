"""bench/train.py --quick runs end to end and reports its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_benchmark_prints_its_table_and_writes_its_figures(tmp_path):
    out = tmp_path / "train.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "train.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "baseline: one fit" in proc.stdout and "search (median of 1)" in proc.stdout
    figures = json.loads(out.read_text())
    assert figures["rows"] == 50_000 and figures["cores"] >= 1 and figures["seconds"] > 0
    assert figures["roc_auc"] > 0.8 and {"date", "notes", "baseline_seconds"} <= set(figures)
    assert "stream" in proc.stdout and figures["rows_10m"] > figures["rows_1m"] > 0
    assert figures["rows_10m_seconds"] > 0 and 0 < figures["rows_10m_peak_rss_mb"] < 4096
