"""Where a benchmark's figures go: bench/results/<name>.json for a full run; a --quick run (the test
suite's) writes only to the path it is given, so it never overwrites the committed figures."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def save_figures(name: str, figures: dict, quick: bool, out: Path | None = None) -> Path | None:
    """Write the figures as JSON; returns the path written, or None for a quick run without `out`."""
    path = out or (None if quick else RESULTS / f"{name}.json")
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def peak_rss_mb() -> float:
    """This process's own peak resident memory, MB.

    Read from the kernel's high-water mark of this process's memory map (VmHWM). `ru_maxrss` is not
    used: Linux carries it across exec, so a child started from a large parent reports the parent's
    peak (the benchmarks that spawn a child after building their data saw their own size there).
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource  # not Linux: the best there is

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
