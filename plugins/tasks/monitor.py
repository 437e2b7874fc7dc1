"""Airflow glue for monitor_model: which windows a run evaluates, the evaluation, the retrain request
and its alert, and the rollback of a champion its bake window found worse than the one it replaced. Each function reads the settings once and calls `ml.monitor`; the values passed between
tasks and to the retrain_request Asset are `ml.monitor.handover` dataclasses, as dicts."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from ml import clock
from ml.contract import load_contract
from ml.lake import Lake
from ml.lake.layout import loop_report_key
from ml.lake.window import HOUR
from ml.monitor.handover import RetrainAsk, WindowOutcome
from ml.settings import load_settings
from ml.validation.handover import ValidatedHour

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
    - otherwise the hours the triggering `validated_telemetry` events announce (`ValidatedHour`s; each
      window ends when its hour ends), so a backlog of validated hours is evaluated hour by hour, in order;
    - otherwise the last closed hour.
    At most `monitor_max_hours` windows, the newest ones; the rest is logged as skipped."""
    settings = load_settings()
    if params.get("end"):
        end = _hour(params["end"], "end").replace(minute=0, second=0, microsecond=0)
        count = int(params.get("hours") or 1)
        ends = [end - i * HOUR for i in range(count)]
    elif asset_events:
        # an event a person created by hand carries no extra: it names no hour
        ends = [ValidatedHour.from_dict(e).end for e in asset_events if e]
    else:
        ends = [(now or clock.now(Lake.from_settings(settings.lake))).replace(minute=0, second=0, microsecond=0)]
    ends, most = sorted(set(ends)), settings.monitor.max_hours
    if len(ends) > most:
        log.warning("%d windows asked for; evaluating the newest %d (%s), skipping %s .. %s", len(ends), most,
                    settings.monitor.variable("max_hours"), ends[0], ends[-most - 1])
        ends = ends[-most:]
    return [e.isoformat() for e in ends]


def evaluate(ends: list[str]) -> list[dict]:
    """Monitor each window; the task log shows every decision with its reason and evidence. Returns each
    window's `WindowOutcome`, as a dict."""
    from ml.monitor import monitor_hours

    settings = load_settings()
    lake = Lake.from_settings(settings.lake)
    ends_at = [datetime.fromisoformat(e) for e in ends]
    outcomes = monitor_hours(lake, load_contract(settings.contract), settings.monitor, ends_at)
    loop_report = lake.url(loop_report_key())
    for o in outcomes:
        d = o["decision"]
        log.info("window ending %s: decision %s%s\n  reason: %s\n  evidence: %s\n  report: %s\n  mlflow: %s",
                 o["window"]["end"], d["kind"], " -> retrain" if d["retrain"] else "", d["reason"], d["evidence"],
                 o["links"].get("report", "none"), o["links"]["mlflow_run"])
    return [WindowOutcome.of(o, loop_report).to_dict() for o in outcomes]


def retrain_request(outcomes: list[dict]) -> dict | None:
    """The retrain_request Asset's extra for the retrain decisions of this run (a `RetrainAsk`: the
    latest one's reason and evidence, and where the earliest of them saw the change begin, which the
    retrain learns from), or None when no decision asks for one."""
    ask = RetrainAsk.of([WindowOutcome.from_dict(o) for o in outcomes])
    return ask.to_dict() if ask else None


def alert_decisions(outcomes: list[dict]) -> list[dict]:
    """One alert per decision that acts: each retrain asked for, and each trigger held back by the daily
    budget (a person may need to look). Triggers held by the cooldown are not sent: a retrain is already
    on its way; they stay in the recorded decisions and the loop report."""
    from ml.alerts import RETRAIN_DECISION, WARN, Alert
    from plugins.notifiers.on_call import notify_on_call

    settings = load_settings()
    model, sent = settings.model_name, []
    for o in map(WindowOutcome.from_dict, outcomes):
        if not (o.retrain or o.suppressed_by == "budget"):
            continue
        if o.retrain:
            title = f"{model}: retrain requested ({o.kind}) for the window ending {o.end}"
            key, severity = f"{RETRAIN_DECISION}:{model}:{o.run_id}", ""
        else:
            title = f"{model}: {o.kind} trigger held back by the retrain budget ({o.end})"
            key, severity = f"{RETRAIN_DECISION}:{model}:budget:{o.end[:10]}", WARN
        evidence = {name: o.links.get(link) for name, link in (
            ("drift report", "report"), ("loop report", "loop_report"), ("monitoring run (MLflow)", "mlflow_run"),
            ("decision", "decision")) if o.links.get(link)}
        result = notify_on_call(Alert(RETRAIN_DECISION, title=title, reason=o.reason, evidence=evidence,
                                      subject=model, dedupe_key=key, severity=severity), alerts=settings.alerts)
        sent.append({"run_id": o.run_id, "channels": result})
    return sent


BAKE_ACTOR = "monitor_model (bake)"


def roll_back_failed_bake(outcomes: list[dict]) -> dict | None:
    """When a window found the champion on probation worse than the one it replaced (`bake.rollback`),
    roll it back the way rollback_model does (alias moves, audit record, control message, on-call alert
    with the evidence) and mark its model file so it is never promoted again; None when no window did.

    Safe to retry: a champion already moved back gives the same audit record (`set_champion`) and the
    announcement again; a champion that moved on since (a newer promotion) is left alone, and the
    failed one is only marked."""
    from mlflow import MlflowClient

    from ml.registry import champion
    from ml.registry.rolled_back import mark_rolled_back
    from plugins.tasks.promotion import announce, rollback

    failed = [o for o in map(WindowOutcome.from_dict, outcomes) if (o.bake or {}).get("rollback")]
    if not failed:
        return None
    last, settings = failed[-1], load_settings()
    bake, name = last.bake, settings.model_name
    client, lake = MlflowClient(settings.mlflow_tracking_uri), Lake.from_settings(settings.lake)
    reason = f"bake window, window ending {last.end}: {bake['note']}"
    current = champion(client, name)
    record = None
    if current is not None and current.version in (bake["champion"], bake["previous"]):
        record = rollback(bake["previous"], BAKE_ACTOR, reason)
    mark = mark_rolled_back(client, lake, name, bake["champion"], BAKE_ACTOR, reason,
                            (record or {}).get("id"), {"window_end": last.end, "test": bake.get("test"),
                                                       "links": dict(last.links)})
    if record is not None:
        announce(record, detail=reason, evidence={k: v for k, v in last.links.items() if v})
    else:
        log.warning("%s v%s was not rolled back: the champion is now v%s; marked only", name, bake["champion"],
                    current.version if current else None)
    return {"record": record, "rolled_back": bake["champion"], "to": bake["previous"], "mark": mark["digest"]}


def update_loop_report() -> dict:
    """Redraw the loop report (live AUC, coverage, drift, decisions, versions, audit) in the lake."""
    from ml.report import build_loop_report

    settings = load_settings()
    report = build_loop_report(Lake.from_settings(settings.lake), settings.model_name,
                               {"mlflow": settings.mlflow_tracking_uri}, key=loop_report_key(),
                               contract=load_contract(settings.contract))
    log.info("loop report: %s", report["url"])
    return {k: report[k] for k in ("key", "url", "decisions", "audit_records")}
