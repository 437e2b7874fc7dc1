"""One paced hour of the loop, as a real-time run would have lived it: the hour's events (up to its end
plus the offload's lateness) into Kafka and scored, the clock moved on, the hour offloaded and validated,
the monitor's decision read, any retrain and promotion it set off waited for, and the sidecar on the
champion that came out of it, before the next hour's events go in."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from ml.lake.layout import decision_key
from ml.lake.window import HOUR
from ml.monitor.run import run_id_for
from plugins.dag_ids import MONITOR_MODEL
from tooling.loop.timeline import LoopError

if TYPE_CHECKING:
    from tooling.loop.run import Loop


def play_hour(loop: Loop, end: datetime) -> dict:
    """The hour ending at `end`, played through the stack; returns what it took (per phase) and what
    happened (the monitor's decision, whether it asked for a retrain, the champion after it)."""
    started_wall, marks = datetime.now(timezone.utc), [("start", time.monotonic())]
    at = end + loop.lateness
    loop.feed.produce(end - HOUR + loop.lateness, min(at, loop.timeline.end), at)
    loop.sidecar.wait_scored()
    marks.append(("stream and score", time.monotonic()))
    loop.clock.set(at)
    loop.feed.offload_hour(end)
    marks.append(("offload", time.monotonic()))
    decision = wait_decision(loop, end)
    marks.append(("monitor", time.monotonic()))
    loop.chain.wait_idle(started_wall, bool(decision.get("retrain")), loop.clock.keep)
    current = loop.champions.current()
    loop.sidecar.wait_serving(current)
    marks.append(("retrain, promotion, swap", time.monotonic()))
    took = marks[-1][1] - marks[0][1]
    record = {"hour": (end - HOUR).isoformat(), "seconds": round(took, 1), "decision": decision.get("kind"),
              "retrain": bool(decision.get("retrain")), "champion": current,
              "phases": {name: round(t - marks[i][1], 1) for i, (name, t) in enumerate(marks[1:])}}
    phases = ", ".join(f"{k} {v:.0f} s" for k, v in record["phases"].items())
    print(f"[loop] hour {end - HOUR:%Y-%m-%d %H}:00: {record['decision']}"
          f"{' -> retrain' if record['retrain'] else ''}, champion v{current}; {took:.0f} s ({phases})", flush=True)
    return record


def wait_decision(loop: Loop, end: datetime) -> dict:
    """The monitor's decision for the window ending at `end`, once its run has finished."""
    key, deadline = decision_key(run_id_for(end)), time.monotonic() + loop.profile.timeout_s
    while True:
        loop.clock.keep()
        if loop.lake.exists(key) and not loop.api.active([MONITOR_MODEL]):
            return json.loads(loop.lake.read_text(key))
        if time.monotonic() > deadline:
            raise LoopError(f"no decision for the window ending {end:%Y-%m-%d %H:%M}Z within "
                            f"{loop.profile.timeout_s:.0f} s ({loop.lake.url(key)}); see the monitor_model runs")
        time.sleep(0.5)
