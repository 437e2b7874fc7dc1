"""Does the backtest agree with the loop? Per window, the decision a paced run recorded against the one
the backtest's configured policy made on the same data and settings.

    recorded = recorded_decisions(lake, window_ends(run))        # what monitor_model wrote, per window end
    found = disagreements(recorded, run)                          # [] when every window agrees
    print(describe(found))

A window agrees when both decided the same kind (`none`, `data`, `metric`, `schedule`) and both did, or
both did not, ask for a retrain. A window one side judged and the other did not is a disagreement too.
The backtest models the loop's hours (serving, offload, monitor, regime wait, training, gates, swap) in
memory; any difference here is a difference in what the two do, not noise: both train with a seeded
search and measure drift with the same statistical tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from ml.backtest.engine import PolicyRun
from ml.backtest.policies import MONITOR
from ml.lake import Lake
from ml.lake.layout import decision_key
from ml.lake.window import HOUR
from ml.monitor.run import run_id_for

MISSING = "no decision"


@dataclass(frozen=True)
class Disagreement:
    """One window whose decisions differ: its end, what differs (`kind`, `retrain` or `missing`), and
    each side's value (`MISSING` where that side has no decision for the window)."""

    end: datetime
    field: str
    loop: str
    backtest: str

    def __str__(self) -> str:
        return f"window ending {self.end:%Y-%m-%d %H:%M}Z: {self.field}: loop {self.loop}, backtest {self.backtest}"


def window_ends(run: PolicyRun) -> list[datetime]:
    """The ends of the windows the backtest judged, oldest first."""
    return [row["hour"] + HOUR for row in run.hours]


def recorded_decisions(lake: Lake, ends: list[datetime]) -> dict[datetime, dict | None]:
    """The decision `monitor_model` recorded for each window ending at `ends` (None where it recorded none)."""
    found: dict[datetime, dict | None] = {}
    for end in ends:
        try:
            found[end] = json.loads(lake.read_text(decision_key(run_id_for(end))))
        except FileNotFoundError:
            found[end] = None
    return found


def disagreements(recorded: dict[datetime, dict | None], run: PolicyRun) -> list[Disagreement]:
    """Every window of `run` (the configured policy, or a variant of it) whose decision differs from the
    recorded one: kind, and whether a retrain was asked for; windows either side lacks are listed too."""
    if run.spec.kind != MONITOR:
        raise ValueError(f"agreement: policy {run.spec.name!r} does not decide per window as the monitor does; "
                         "compare the configured policy (or a --policy variant)")
    played = {row["hour"] + HOUR: row for row in run.hours}
    out = []
    for end in sorted(set(played) | set(recorded)):
        ours, theirs = played.get(end), recorded.get(end)
        if ours is None or theirs is None:
            out.append(Disagreement(end, "missing", _kind(theirs), _kind(ours)))
            continue
        if ours["kind"] != theirs.get("kind"):
            out.append(Disagreement(end, "kind", _kind(theirs), _kind(ours)))
        if bool(ours["retrain"]) != bool(theirs.get("retrain")):
            out.append(Disagreement(end, "retrain", _yes(theirs.get("retrain")), _yes(ours["retrain"])))
    return out


def describe(found: list[Disagreement]) -> str:
    """One line per disagreement, or a line saying that every window agrees."""
    return "\n".join(map(str, found)) if found else "every window's decision agrees"


def _kind(record: dict | None) -> str:
    if record is None:
        return MISSING
    return f"{record.get('kind')}{' -> retrain' if record.get('retrain') else ''}"


def _yes(value) -> str:
    return "retrain" if value else "no retrain"
