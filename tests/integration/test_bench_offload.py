"""bench/offload.py --quick runs against the real broker and reports what it measured."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_offload_benchmark_measures_and_reports(kafka_bootstrap, tmp_path):
    out = tmp_path / "offload.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "offload.py"), "--quick", "--events", "60000",
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["events"] == 60_000
    for key in ("events_per_s", "mb_per_s", "peak_rss_mb", "ceiling_events_per_s", "ratio_to_ceiling"):
        assert figures[key] > 0, key
    assert "events_per_s" in proc.stdout and "ceiling_events_per_s" in proc.stdout
