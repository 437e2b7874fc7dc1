"""What the loop did, measured from what it left behind: the lake, the registry and the topics.

The live AUC of a version is computed from the predictions it actually served (the sidecar's records,
offloaded to the lake) joined by event id with the outcomes in the lake, over the hours it served;
the label coverage says how many of those predictions had their outcome offloaded yet.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
from confluent_kafka import Consumer, TopicPartition
from mlflow import MlflowClient

from ml.evaluate import classification_metrics
from ml.lake.layout import decisions_prefix, drift_report_prefix, is_drift_report_key
from ml.lake.window import Window
from ml.monitor.live import labelled_predictions
from ml.registry import model_url


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


def summarize(loop, outcome: dict, report: dict) -> dict:
    """The figures of one loop run."""
    t, settings, lake = loop.timeline, loop.settings, loop.lake
    labels_until = t.end + timedelta(minutes=loop.contract.label.max_delay_minutes)
    client = MlflowClient(settings.mlflow_tracking_uri)
    decisions = [json.loads(lake.read_text(k)) for k in sorted(lake.list(decisions_prefix())) if k.endswith(".json")]
    detected = next((d for d in decisions if d.get("retrain") and d["evidence"]["now"] > t.onset.isoformat()), None)
    first, second = outcome["first"], outcome["second"]

    tags = client.get_model_version(settings.model_name, second).tags

    def tag(key: str) -> float | None:
        return float(tags[key]) if key in tags else None

    mlflow_url = settings.mlflow_tracking_uri
    drift_reports = sorted(k for k in lake.list(drift_report_prefix()) if is_drift_report_key(k))
    return {
        "profile": loop.profile.name, "timeline": t.to_dict(), "drift_onset": t.onset.isoformat(),
        "detected_by": None if detected is None else {
            "run": detected["run_id"], "kind": detected["kind"], "reason": detected["reason"],
            "window_end": detected["evidence"]["now"],
            "hours_after_onset": (datetime.fromisoformat(detected["evidence"]["now"]) - t.onset).total_seconds() / 3600,
            "drifted": (detected.get("drift") or {}).get("drifted", []),
            "mlflow_run": (detected.get("links") or {}).get("mlflow_run")},
        "decisions": {k: sum(d["kind"] == k for d in decisions) for k in ("none", "data", "metric", "schedule")},
        "retrains_asked": sum(bool(d.get("retrain")) for d in decisions),
        "versions": {"before": first, "after": second},
        "retrained_on": {"start": tags.get("window_start"), "end": tags.get("window_end")},
        # both versions on the new version's holdout (the most recent validated rows at its training)
        "holdout_auc": {"before": tag("champion_holdout_roc_auc"), "after": tag("holdout_roc_auc")},
        "live": {"before": live_auc(lake, loop.contract, first, t.onset, t.swap_from, labels_until),
                 "after": live_auc(lake, loop.contract, second, t.swap_from, t.end, labels_until)},
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
    lb, la = s["live"]["before"], s["live"]["after"]
    rows = [
        ("drift onset (covariate + concept)", s["drift_onset"]),
        ("detected by", f"{d.get('run', 'not detected')} ({d.get('kind', '-')}, "
                        f"{d.get('hours_after_onset', 0):.0f} h after onset)"),
        ("reason", d.get("reason", "-")),
        ("drifted features", ", ".join(d.get("drifted", [])) or "-"),
        ("champion before -> after", f"v{s['versions']['before']} -> v{s['versions']['after']}"),
        ("new champion learned from", _span(s["retrained_on"], s["drift_onset"])),
        ("holdout AUC, same holdout", f"v{s['versions']['before']} {auc(s['holdout_auc']['before'])} -> "
                                      f"v{s['versions']['after']} {auc(s['holdout_auc']['after'])}"),
        ("live AUC on drifted data, before", f"{auc(lb['roc_auc'])} (v{lb['version']}, {lb['labels']} labels, "
                                             f"coverage {lb['coverage']:.0%})"),
        ("live AUC after the swap", f"{auc(la['roc_auc'])} (v{la['version']}, {la['labels']} labels, "
                                    f"coverage {la['coverage']:.0%})"),
        ("decisions", ", ".join(f"{k} {v}" for k, v in s["decisions"].items())
         + f"; retrains asked {s['retrains_asked']}"),
        ("events produced / scored", f"{s['events_produced']:,} / {s['events_scored']:,}"),
        ("dead letters (telemetry.dlq)", f"{s['dlq']:,}"),
        ("alerts topic (machine actions, on-call)", f"{s['alerts']:,}"),
        ("Airflow", s["urls"]["airflow"]),
        ("MLflow registry", s["urls"]["mlflow"]),
        ("loop report", s["urls"]["loop_report"]),
        ("latest drift report", s["urls"]["drift_report"] or "-"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)



def _span(window: dict, onset: str) -> str:
    """A training window as hours relative to the drift onset."""
    if not window.get("start") or not window.get("end"):
        return "-"
    zero = datetime.fromisoformat(onset)

    def rel(value: str) -> str:
        return f"{(datetime.fromisoformat(value) - zero).total_seconds() / 3600:+.0f} h"

    return f"{window['start']} .. {window['end']} (onset {rel(window['start'])} .. {rel(window['end'])})"
