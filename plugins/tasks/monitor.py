"""Airflow glue for monitor_model: which windows a run evaluates, the evaluation, the retrain request
and its alert. Each function reads the settings once and calls `ml.monitor`."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from ml import clock
from ml.contract import load_contract
from ml.lake import Lake
from ml.lake.layout import loop_report_key
from ml.lake.window import HOUR
from ml.settings import load_settings

log = logging.getLogger(__name__)


def _hour(value: str, field: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"param {field}={value!r} is not an ISO time; give e.g. 2026-11-22T14:00Z") from None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def window_ends(params: dict, asset_events: list[dict], now: datetime | None = None) -> list[str]:
    """The ends of the hourly windows this run evaluates, oldest first.

    - `params.end` (and `params.hours`, default 1): the windows ending at `end` and the hours before it:
      a manual check or a backfill of a range;
    - otherwise the hours the triggering `validated_telemetry` events announce (each window ends when
      its hour ends), so a backlog of validated hours is evaluated hour by hour, in order;
    - otherwise the last closed hour.
    At most `monitor_max_hours` windows, the newest ones; the rest is logged as skipped."""
    settings = load_settings()
    if params.get("end"):
        end = _hour(params["end"], "end").replace(minute=0, second=0, microsecond=0)
        count = int(params.get("hours") or 1)
        ends = [end - i * HOUR for i in range(count)]
    elif asset_events:
        ends = [_hour(e["hour"], "hour") + HOUR for e in asset_events if e.get("hour")]
    else:
        ends = [(now or clock.now(Lake.from_settings(settings))).replace(minute=0, second=0, microsecond=0)]
    ends = sorted(set(ends))
    if len(ends) > settings.monitor_max_hours:
        log.warning("%d windows asked for; evaluating the newest %d (CONTINUUM_MONITOR_MAX_HOURS), skipping %s .. %s",
                    len(ends), settings.monitor_max_hours, ends[0], ends[-settings.monitor_max_hours - 1])
        ends = ends[-settings.monitor_max_hours:]
    return [e.isoformat() for e in ends]


def evaluate(ends: list[str]) -> list[dict]:
    """Monitor each window; the task log shows every decision with its reason and evidence."""
    from ml.monitor import monitor_hours

    settings = load_settings()
    lake = Lake.from_settings(settings)
    ends_at = [datetime.fromisoformat(e) for e in ends]
    outcomes = monitor_hours(lake, load_contract(settings.contract), settings, ends_at)
    loop_report = lake.url(loop_report_key())
    for o in outcomes:
        d = o["decision"]
        log.info("window ending %s: decision %s%s\n  reason: %s\n  evidence: %s\n  report: %s\n  mlflow: %s",
                 o["window"]["end"], d["kind"], " -> retrain" if d["retrain"] else "", d["reason"], d["evidence"],
                 o["links"].get("report", "none"), o["links"]["mlflow_run"])
    return [{"run_id": o["run_id"], "window": o["window"], "kind": o["decision"]["kind"],
             "retrain": o["decision"]["retrain"], "suppressed_by": o["decision"]["suppressed_by"],
             "reason": o["decision"]["reason"], "drift_share": (o["drift"] or {}).get("drift_share"),
             "live_auc": (o["live"] or {}).get("roc_auc"),
             "links": {**o["links"], "loop_report": loop_report},
             "champion": (o["champion"] or {}).get("version"), "regime_since": o.get("regime_since")}
            for o in outcomes]


def retrain_request(outcomes: list[dict]) -> dict | None:
    """The request for the retrain decisions of this run (the latest one's reason and evidence), or None.
    `regime_since` is where the earliest of them saw the change begin: the retrain learns from there."""
    asked = [o for o in outcomes if o["retrain"]]
    if not asked:
        return None
    last = asked[-1]
    since = sorted(o["regime_since"] for o in asked if o.get("regime_since"))
    return {"reason": last["kind"], "decision": last["kind"], "detail": last["reason"], "run_id": last["run_id"],
            "window_end": last["window"]["end"], "champion": last["champion"], "links": last["links"],
            "regime_since": since[0] if since else None, "decisions": [o["run_id"] for o in asked]}


def alert_decisions(outcomes: list[dict]) -> list[dict]:
    """One alert per decision that acts: each retrain asked for, and each trigger held back by the daily
    budget (a person may need to look). Triggers held by the cooldown are not sent: a retrain is already
    on its way; they stay in the recorded decisions and the loop report."""
    from ml.alerts import RETRAIN_DECISION, WARN, Alert
    from plugins.notifiers.on_call import notify_on_call

    settings = load_settings()
    sent = []
    for o in outcomes:
        if not (o["retrain"] or o["suppressed_by"] == "budget"):
            continue
        end = o["window"]["end"]
        if o["retrain"]:
            title = f"{settings.model_name}: retrain requested ({o['kind']}) for the window ending {end}"
            key, severity = f"{RETRAIN_DECISION}:{settings.model_name}:{o['run_id']}", ""
        else:
            title = f"{settings.model_name}: {o['kind']} trigger held back by the retrain budget ({end})"
            key, severity = f"{RETRAIN_DECISION}:{settings.model_name}:budget:{end[:10]}", WARN
        evidence = {name: url for name, url in (("drift report", o["links"].get("report")),
                                                ("loop report", o["links"].get("loop_report")),
                                                ("monitoring run (MLflow)", o["links"].get("mlflow_run")),
                                                ("decision", o["links"].get("decision"))) if url}
        result = notify_on_call(Alert(RETRAIN_DECISION, title=title, reason=o["reason"], evidence=evidence,
                                      subject=settings.model_name, dedupe_key=key, severity=severity),
                                settings=settings)
        sent.append({"run_id": o["run_id"], "channels": result})
    return sent


def update_loop_report() -> dict:
    """Redraw the loop report (live AUC, coverage, drift, decisions, versions, audit) in the lake."""
    from ml.report import build_loop_report

    settings = load_settings()
    report = build_loop_report(Lake.from_settings(settings), settings.model_name,
                               {"mlflow": settings.mlflow_tracking_uri}, key=loop_report_key())
    log.info("loop report: %s", report["url"])
    return {k: report[k] for k in ("key", "url", "decisions", "audit_records")}
