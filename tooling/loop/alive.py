"""`continuum-loop alive`: after `make demo`, the next real hour goes through the scheduled DAGs green and
on-call hears nothing but info.

The demo ends with a live stream in real time. The hour in progress when the loop ended is the first one
the stream fills; Airflow's scheduler offloads it at the hour's end plus the allowed lateness, and the
offload's asset event starts `monitor_model`. This waits for both (an hour and some minutes at most),
then checks, by the records they left:

- the scheduled `lake_offload` run of that hour succeeded, and its manifest holds rows that passed
  validation (not `empty`: the stream was live);
- the monitor recorded its decision for the window ending with that hour, and no `monitor_model` run
  failed since the loop ended;
- every alert sent since the loop ended is `info` (the alert log the local stack's Airflow writes).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ml.lake import Lake
from ml.lake.window import HOUR, Window
from ml.lake.layout import decision_key, manifest_key
from ml.monitor.run import run_id_for
from plugins.dag_ids import LAKE_OFFLOAD, MONITOR_MODEL
from tooling.loop.airflow_api import AirflowApi


@dataclass
class Alive:
    """What the first live hour left behind; `problems` is empty when it went as it should."""

    hour: datetime
    offload_run: str | None = None
    rows: int | None = None
    validation: str | None = None
    decision: dict | None = None
    alerts: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def first_live_hour(loop_ended: datetime) -> datetime:
    """The hour in progress when the loop ended: the live stream fills it from then on."""
    return loop_ended.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def alerts_since(log: Path, since: datetime) -> list[dict]:
    """The alerts the log holds that were created at or after `since`."""
    if not log.is_file():
        return []
    out = []
    for line in log.read_text().splitlines():
        alert = json.loads(line)
        if datetime.fromisoformat(alert["created_at"]) >= since:
            out.append(alert)
    return out


def not_info(alerts: list[dict]) -> list[str]:
    """Each alert above `info`, as a line for the report."""
    return [f"{a['severity']} alert {a['kind']}: {a.get('title', '')}" for a in alerts if a.get("severity") != "info"]


def check_alive(api: AirflowApi, lake: Lake, alert_log: Path, loop_ended: datetime, timeout_s: float,
                poll_s: float = 30.0) -> Alive:
    """Wait for the first live hour's scheduled offload and the monitor's decision on it; see the module."""
    hour = first_live_hour(loop_ended)
    found = Alive(hour)

    def scheduled(runs: list[dict]) -> list[dict]:
        return [r for r in runs if r.get("run_type") == "scheduled" and r.get("data_interval_start")
                and datetime.fromisoformat(r["data_interval_start"].replace("Z", "+00:00")) == hour]

    deadline = time.monotonic() + timeout_s
    run = api.wait_runs(LAKE_OFFLOAD, scheduled, timeout_s, f"the hour {hour:%Y-%m-%dT%H}", poll_s=poll_s)[0]
    found.offload_run = run["dag_run_id"]
    if run["state"] != "success":
        found.problems.append(f"lake_offload {run['dag_run_id']}: {run['state']}")
    manifest = json.loads(lake.read_text(manifest_key("telemetry", Window(hour, hour + HOUR))))
    found.rows, found.validation = manifest.get("rows"), (manifest.get("validation") or {}).get("status")
    if not found.rows or found.validation != "valid":
        found.problems.append(f"the hour {hour:%Y-%m-%dT%H} holds {found.rows} rows, validation {found.validation!r}: "
                              "a live hour should hold valid rows")
    key = decision_key(run_id_for(hour + HOUR))
    while not lake.exists(key) and time.monotonic() < deadline:
        time.sleep(poll_s)
    if lake.exists(key):
        found.decision = json.loads(lake.read_text(key))
    else:
        found.problems.append(f"no monitor decision for the window ending {hour + HOUR:%Y-%m-%dT%H:%M} ({lake.url(key)})")
    failed = api.failed_since([MONITOR_MODEL, LAKE_OFFLOAD], loop_ended, run_types=("scheduled", "asset_triggered", "manual"))
    found.problems += [f"failed since the loop ended: {url}" for url in failed]
    found.alerts = alerts_since(alert_log, loop_ended)
    found.problems += not_info(found.alerts)
    return found


def describe(found: Alive) -> str:
    lines = [f"first live hour       {found.hour:%Y-%m-%dT%H:%M}Z",
             f"scheduled offload     {found.offload_run}: {found.rows} rows, validation {found.validation}",
             f"monitor decision      {(found.decision or {}).get('kind')}: {(found.decision or {}).get('reason', '')}",
             f"alerts since the loop {len(found.alerts)} ({', '.join(sorted({a['severity'] for a in found.alerts})) or 'none'})"]
    return "\n".join(lines + [f"PROBLEM: {p}" for p in found.problems] + (["alive: every check passed"] if not found.problems else []))


def loop_end_of(summary: Path) -> datetime:
    """When the loop ended: its summary's write time."""
    return datetime.fromtimestamp(summary.stat().st_mtime, timezone.utc)

