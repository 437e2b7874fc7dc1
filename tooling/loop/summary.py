"""What the loop did, measured from what it left behind: the lake, the registry and the topics.

The live AUC of a version is computed from the predictions it actually served (the sidecar's records,
offloaded to the lake) joined by event id with the outcomes in the lake, over the hours it served;
the label coverage says how many of those predictions had their outcome offloaded yet.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from confluent_kafka import Consumer, TopicPartition
from mlflow import MlflowClient

from ml.evaluate import classification_metrics
from ml.lake.layout import decisions_prefix, drift_report_prefix, is_drift_report_key
from ml.lake.window import Window
from ml.audit import read_records
from ml.monitor.live import labelled_predictions, read_hours
from ml.registry import model_url
from ml.registry.history import ChampionTimeline, stale_predictions
from tooling.loop.windows import gain, per_hour


def live_auc(lake, contract, version: str, start: datetime, end: datetime, labels_until: datetime) -> dict:
    """ROC AUC of `version`'s served predictions for events in [start, end), with outcomes to `labels_until`."""
    preds, joined = labelled_predictions(lake, contract, version, Window(start, end), labels_until)
    if preds.empty:
        return {"version": version, "predictions": 0, "labels": 0, "coverage": 0.0, "roc_auc": None}
    y = joined[contract.label.field].astype(int).to_numpy() if len(joined) else np.array([], dtype=int)
    both = len(set(y.tolist())) == 2
    auc = classification_metrics(y, joined["score"].to_numpy(float), 0.5)["roc_auc"] if both else None
    return {"version": version, "predictions": int(len(preds)), "labels": int(len(joined)),
            "coverage": round(len(joined) / len(preds), 3) if len(preds) else 0.0, "roc_auc": auc}


def topic_count(bootstrap: str, topic: str) -> int:
    """Records in a topic (sum of the partitions' end offsets minus start offsets)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "continuum-loop-summary"})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return 0
        total = 0
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


def served(lake, contract, model: str, start: datetime, end: datetime) -> dict:
    """Every event of [start, end) against the predictions served for it, by event id: the events never
    scored, those scored more than once, those scored though they were not to be, and the predictions
    whose version was not the champion at the event's time (the audit trail's answer)."""
    event_id, event_time = contract.event_id, contract.event_time
    window = Window(start.replace(minute=0, second=0, microsecond=0), end)
    events = read_hours(lake, contract, "telemetry", window)
    events = events.loc[pd.to_datetime(events[event_time], utc=True) >= pd.Timestamp(start), [event_id, event_time]]
    preds = read_hours(lake, contract, "predictions", window)
    ids = set(events[event_id])
    scored = preds.merge(events, on=event_id, how="inner")
    records, problems = read_records(lake)
    stale = stale_predictions(scored, ChampionTimeline.from_records(records, model), event_time)
    counts = preds[event_id].value_counts() if len(preds) else pd.Series(dtype="int64")
    return {"from": start.isoformat(), "to": end.isoformat(), "events": len(ids),
            "scored": len(set(preds[event_id]) & ids) if len(preds) else 0,
            "missing": len(ids - set(preds[event_id] if len(preds) else [])),
            "duplicates": int((counts > 1).sum()),
            "not_to_be_scored": len(set(preds[event_id] if len(preds) else []) - ids),
            "stale_scored": len(stale),
            "stale_examples": stale.head(5)[[event_id, event_time, "model_version", "champion_at_event_time"]]
            .astype(str).to_dict("records"),
            "audit_problems": problems}


def summarize(loop, outcome: dict, report: dict) -> dict:
    """The figures of one loop run."""
    t, settings, lake = loop.timeline, loop.settings, loop.lake
    labels_until = t.end + timedelta(minutes=loop.contract.label.max_delay_minutes)
    client = MlflowClient(settings.mlflow_tracking_uri)
    decisions = [json.loads(lake.read_text(k)) for k in sorted(lake.list(decisions_prefix())) if k.endswith(".json")]
    play = loop.play
    since = play.change_at or t.onset  # the known change, or (no change marked) the first hour played
    detected = next((d for d in decisions if d.get("retrain") and d["evidence"]["now"] > since.isoformat()), None)
    records, _ = read_records(lake)
    moves = ChampionTimeline.from_records(records, settings.model_name).moves
    first = outcome["first"]
    second = next((v for _, v in moves if v != first and int(v) > int(first)), None)
    tags = client.get_model_version(settings.model_name, second).tags if second else {}

    def tag(key: str) -> float | None:
        return float(tags[key]) if key in tags else None

    mlflow_url = settings.mlflow_tracking_uri
    hours = per_hour(lake, loop.contract, mlflow_url, settings.model_name, first, t.hours(t.onset, t.end), labels_until)
    drift_reports = sorted(k for k in lake.list(drift_report_prefix()) if is_drift_report_key(k))
    return {
        "played": play.name, "profile": loop.profile.name, "timeline": t.to_dict(),
        "shifted_by_days": play.shift.days,
        "change": play.change if play.change_at else None,
        "drift_onset": play.change_at.isoformat() if play.change_at else None,
        "detected_by": None if detected is None else {
            "run": detected["run_id"], "kind": detected["kind"], "reason": detected["reason"],
            "window_end": detected["evidence"]["now"],
            "hours_after_onset": (datetime.fromisoformat(detected["evidence"]["now"]) - since).total_seconds() / 3600,
            "drifted": (detected.get("drift") or {}).get("drifted", []),
            "mlflow_run": (detected.get("links") or {}).get("mlflow_run")},
        "decisions": {k: sum(d["kind"] == k for d in decisions) for k in ("none", "data", "metric", "schedule")},
        "retrains_asked": sum(bool(d.get("retrain")) for d in decisions),
        "versions": {"before": first, "after": second, "current": outcome["current"]},
        "champion_moves": [{"at": at.isoformat(), "version": v} for at, v in moves],
        "retrained_on": {"start": tags.get("window_start"), "end": tags.get("window_end")},
        # both versions on the new version's holdout (the most recent validated rows at its training)
        "holdout_auc": {"before": tag("champion_holdout_roc_auc"), "after": tag("holdout_roc_auc")},
        # each version on the drifted hours' events it served (the version picks its own predictions)
        "live": {"before": live_auc(lake, loop.contract, first, since, t.end, labels_until),
                 "after": live_auc(lake, loop.contract, second, since, t.end, labels_until) if second else None},
        "per_hour": hours,
        "gain": {"after_change": gain(hours, play.change_at), "all_played": gain(hours, None)},
        "served": served(lake, loop.contract, settings.model_name, datetime.fromisoformat(outcome["first_served"]),
                         t.end),
        "hours": loop.hours,
        "events_produced": topic_count(settings.kafka_bootstrap, settings.topic_telemetry),
        "events_scored": topic_count(settings.kafka_bootstrap, settings.topic_predictions),
        "dlq": topic_count(settings.kafka_bootstrap, settings.topic_dlq),
        "alerts": topic_count(settings.kafka_bootstrap, settings.topic_alerts),
        "urls": {"airflow": loop.api.url, "mlflow": model_url(mlflow_url, settings.model_name),
                 "loop_report": report["url"], "drift_report": lake.url(drift_reports[-1]) if drift_reports else None,
                 "serving": f"{loop.serving_url}/healthz"},
        "steps": loop.steps,
    }


def table(s: dict) -> str:
    """The summary as a plain two-column table for the terminal."""
    def auc(x):
        return "n/a" if x is None else f"{x:.4f}"

    d = s["detected_by"] or {}
    lb, la, sv = s["live"]["before"], s["live"]["after"] or {"roc_auc": None, "version": None, "labels": 0,
                                                             "coverage": 0.0}, s["served"]
    moved = f" (its own times moved {s['shifted_by_days']} days)" if s["shifted_by_days"] else ""
    after = "the change" if s["drift_onset"] else "the first hour played"
    g = s["gain"]["after_change" if s["drift_onset"] else "all_played"]
    rows = [
        ("played", s["played"] + moved),
        ("event time", f"{s['timeline']['start'][:16]}Z .. {s['timeline']['end'][:16]}Z, history to "
                       f"{s['timeline']['onset'][:16]}Z"),
        (s["change"] or "known change", s["drift_onset"] or "none marked (--change-at)"),
        ("retrain first asked by", "none" if not d else f"{d['run']} ({d['kind']}, "
                                                         f"{d['hours_after_onset']:.0f} h after {after})"),
        ("reason", d.get("reason", "-")),
        ("drifted features", ", ".join(d.get("drifted", [])) or "-"),
        ("champion before -> after", f"v{s['versions']['before']} -> "
                                     f"{'v' + s['versions']['after'] if s['versions']['after'] else 'no other'}"),
        ("new champion learned from", _span(s["retrained_on"], s["drift_onset"] or s["timeline"]["onset"])),
        ("holdout AUC, same holdout", f"v{s['versions']['before']} {auc(s['holdout_auc']['before'])} -> "
                                      f"v{s['versions']['after']} {auc(s['holdout_auc']['after'])}"),
        (f"live AUC on events it served after {after}", f"v{lb['version']} {auc(lb['roc_auc'])} ({lb['labels']} labels, "
                                                 f"coverage {lb['coverage']:.0%}) -> v{la['version']} "
                                                 f"{auc(la['roc_auc'])} ({la['labels']} labels, "
                                                 f"coverage {la['coverage']:.0%})"),
        (f"accuracy after {after}: served / first champion alone",
         "-" if g["gain"] is None else f"{g['served_accuracy']:.4f} / {g['first_accuracy']:.4f}: gain "
                                      f"{g['gain']:+.4f} over {g['hours']} hours"),
        ("champion moves (event time)", ", ".join(f"v{m['version']} at {m['at'][:16]}Z" for m in s["champion_moves"])),
        ("decisions", ", ".join(f"{k} {v}" for k, v in s["decisions"].items())
         + f"; retrains asked {s['retrains_asked']}"),
        ("events produced / scored", f"{s['events_produced']:,} / {s['events_scored']:,} (the history before "
                                     f"{sv['from'][:16]}Z is never served)"),
        ("served from the first champion on", f"{sv['scored']:,} of {sv['events']:,} events; missing {sv['missing']}, "
                                              f"scored twice {sv['duplicates']}, by a model not champion at the "
                                              f"event's time {sv['stale_scored']}"),
        ("hours played one at a time", _pace(s["hours"])),
        ("dead letters (telemetry.dlq)", f"{s['dlq']:,}"),
        ("alerts topic (machine actions, on-call)", f"{s['alerts']:,}"),
        ("Airflow", s["urls"]["airflow"]),
        ("MLflow registry", s["urls"]["mlflow"]),
        ("loop report", s["urls"]["loop_report"]),
        ("latest drift report", s["urls"]["drift_report"] or "-"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)



def hour_table(s: dict) -> str:
    """The hours played, one line each: who served, labelled events, accuracy and ROC AUC served, and the
    first champion's on the same events."""
    def f(x):
        return "   -  " if x is None else f"{x:.4f}"

    lines = ["  hour (event time)   served by  events  labels  accuracy  AUC     first: accuracy  AUC"]
    for r in s["per_hour"]:
        served = ",".join(f"v{v}" for v in r["served_by"]) or "-"
        lines.append(f"  {r['hour'][:16]}Z  {served:<9}  {r['events']:>6}  {r['labels']:>6}  {f(r['accuracy'])}    "
                     f"{f(r['roc_auc'])}  {f(r['first_accuracy'])}           {f(r['first_roc_auc'])}")
    return "\n".join(lines)


def _span(window: dict, onset: str) -> str:
    """A training window as hours relative to the change (or the history's end)."""
    if not window.get("start") or not window.get("end"):
        return "-"
    zero = datetime.fromisoformat(onset)

    def rel(value: str) -> str:
        return f"{(datetime.fromisoformat(value) - zero).total_seconds() / 3600:+.0f} h"

    return f"{window['start']} .. {window['end']} ({rel(window['start'])} .. {rel(window['end'])} from {onset[:16]}Z)"


def _pace(hours: list[dict]) -> str:
    if not hours:
        return "-"
    seconds = sorted(h["seconds"] for h in hours)
    return (f"{len(hours)}, {sum(seconds) / len(seconds):.0f} s each on average (median {seconds[len(seconds) // 2]:.0f} s, "
            f"longest {seconds[-1]:.0f} s)")
