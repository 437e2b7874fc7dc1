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
