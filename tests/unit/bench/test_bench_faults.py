"""bench/faults.py refuses a size below one, naming the flag, before it starts anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_a_size_below_one_is_refused_with_the_flag_named():
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "faults.py"), "--hour-events", "0"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 2 and "--hour-events must be at least 1 (got 0)" in run.stderr, run.stderr[-2000:]
