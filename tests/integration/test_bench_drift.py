"""bench/drift.py --quick runs end to end, prints its table against the baseline and writes its figures,
the summaries' check at both sizes included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_drift_benchmark_measures_and_reports(tmp_path):
    out = tmp_path / "drift.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "drift.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "drift check (sampled, Evidently)" in proc.stdout and "baseline: KS/chi2 on all rows" in proc.stdout
    assert "summaries' check (every row)" in proc.stdout and "summaries' check, 200,000 rows" in proc.stdout
    figures = json.loads(out.read_text())
    assert figures["rows"] == 50_000 and figures["cores"] >= 1 and figures["rows_10m"] == 200_000
    for key in ("seconds", "peak_rss_mb", "rows_per_s", "baseline_seconds", "sketch_window_seconds", "window_cost_ratio",
                "rows_10m_seconds", "rows_10m_peak_rss_mb", "summarize_seconds_per_million_rows"):
        assert figures[key] > 0, key
    assert figures["drifted_features"] >= 5  # the covariate scenario moves five features
    assert figures["sketch_drifted_features"] >= 5 and figures["rows_10m_drifted_features"] >= 5
    assert 0 <= figures["sketch_max_abs_error"] < 0.05  # measured 0.021 at 50,000 rows a side
    assert {"date", "notes"} <= set(figures)
