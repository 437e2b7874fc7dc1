"""One monitoring step: the window ending at an hour, against the champion, to a recorded decision.

    outcome = monitor_hour(lake, contract, settings.monitor, end=datetime(2026, 11, 22, 14, tzinfo=timezone.utc))
    outcome["decision"]["kind"], outcome["decision"]["reason"], outcome["links"]["report"]

For the hour ending at `end` (event time, so a backfill sees what a live run would have seen):
- drift: the valid telemetry hours of the recent window (`DriftSettings.window_hours`) against the champion's
  reference of the same hours of the day (`ml.monitor.reference`): decided on the summaries of every row
  with calibrated thresholds, Evidently's report drawn on a sample (`ml.monitor.drift_check`); the HTML
  report and the decision's JSON summary go to the run's drift report folder (`layout.drift_report_prefix`).
  A window holding an hour of the day the reference lacks is not judged for drift (a not-judged window
  breaks the run of drifted windows); once its live metrics are judged healthy, its hours become the
  reference of theirs;
- live metrics: the champion's mature predictions joined with their outcomes (`ml.monitor.live`), which
  the decision rests on, and every serving version's on the predictions it scored (`live_by_version`);
- estimated: the champion's figures expected from its calibrated scores on the latest hours, before their
  labels (`ml.monitor.estimate`), and the same estimate on the matured live window against its realized
  AUC: a gap over the tolerance flags the estimator `unreliable` (concept drift);
- bake: while the champion is on probation after its promotion (`BakeSettings.hours`), its scores and
  the shadow's of the champion it replaced, on the same matured events, in a paired test
  (`ml.monitor.bake`); `bake.rollback` says the champion is worse and is to be rolled back;
- history: the decisions of the 24 hours before, in the lake, give the drift shares of the previous
  windows (k consecutive drifted windows count, a missing hour breaks the run) and the recent retrains
  (cooldown, budget);
- the decision (`ml.monitor.judge.judge_window`, the policy's pure core shared with the backtest), written to the lake (`layout.decision_key`) with all of the above, and an
  MLflow run in the `<model>-monitoring` experiment holding the figures, the report and the decision, so
  a person can open the report from the MLflow UI.
"""

from __future__ import annotations

import json
import logging
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import mlflow
import pandas as pd

from ml.contract import Contract
from ml.drift import write_drift_report
from ml.lake import Lake
from ml.lake.layout import decision_key, manifest_hash
from ml.lake.window import HOUR, Window
from ml.monitor.bake import champion_bake
from ml.monitor.champion import ChampionInfo, champion_info
from ml.monitor.drift_check import check_window, drift_share
from ml.monitor.estimate import window_estimate
from ml.monitor.live import live_figures, window_scores
from ml.monitor.reference import ReferenceCache, drift_reference
from ml.monitor.judge import (WindowInputs, drift_chain, judge_window, learns_reference, pending_until,
                              recent_retrains, regime_since, whole_hour)
from ml.policy import record_decision
from ml.registry import run_url
from ml.settings import DriftSettings, LiveSettings, MonitorSettings, RegistrySettings
from ml.validation import read_hour, valid_hours

log = logging.getLogger(__name__)
__all__ = ["drift_chain", "monitor_hour", "monitor_hours", "pending_until", "previous_decisions", "recent_retrains",
           "regime_since", "run_id_for", "whole_hour"]
HISTORY_HOURS = 24


def run_id_for(end: datetime) -> str:
    """The run name of the window ending at `end`: reruns and backfills of an hour rewrite its records."""
    return f"monitor-{end.astimezone(timezone.utc):%Y%m%dT%H%M}"


def previous_decisions(lake: Lake, end: datetime, hours: int = HISTORY_HOURS,
                       known: dict[str, dict | None] | None = None) -> list[dict]:
    """The recorded decisions of the `hours` hourly windows before `end`, newest first (gaps skipped).
    `known` (run id: record, or None for none) saves reading them again across the windows of a run."""
    known = {} if known is None else known
    out = []
    for back in range(1, hours + 1):
        run_id = run_id_for(end - back * HOUR)
        if run_id not in known:
            try:
                known[run_id] = json.loads(lake.read_text(decision_key(run_id)))
            except FileNotFoundError:
                known[run_id] = None
        if known[run_id] is not None:
            out.append(known[run_id])
    return out


def window_frame(lake: Lake, contract: Contract, start: datetime, end: datetime) -> tuple[pd.DataFrame, list[str]]:
    """The telemetry of the valid hours in [start, end) and the hours it came from."""
    frames, hours = [], []
    for manifest in valid_hours(lake, "telemetry", start, end):
        df, problems = read_hour(lake, contract, "telemetry", manifest)
        if problems:
            log.warning("skipping %s: %s", manifest["window"]["start"], "; ".join(problems))
            continue
        frames.append(df)
        hours.append(manifest["window"]["start"])
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), hours


def monitor_hour(lake: Lake, contract: Contract, monitor: MonitorSettings, end: datetime,
                 references: ReferenceCache | None = None, info: ChampionInfo | None | bool = False,
                 known: dict[str, dict | None] | None = None) -> dict:
    """Monitor the window ending at `end` with the drift, live and retrain settings of `monitor`; returns
    the recorded decision and where its evidence is.
    `known`: the decisions already read (or recorded) by this run, which the new one joins."""
    end = whole_hour(end)
    run_id = run_id_for(end)
    registry, drift, live_settings = monitor.registry, monitor.drift, monitor.live
    references = references or ReferenceCache(lake, contract, registry)
    if info is False:
        info = champion_info(registry.tracking_uri, registry.model_name, lake)
    start = end - drift.window_hours * HOUR
    context = {"window": {"start": start.isoformat(), "end": end.isoformat()}, "model": registry.model_name,
               "champion": info.to_dict() if info else None, "drift": None, "live": None, "live_by_version": None,
               "estimated": None, "bake": None, "links": {}}
    history = previous_decisions(lake, end, known=known)
    drift_summary, html = None, None
    with tempfile.TemporaryDirectory(prefix="continuum-monitor-") as tmp:
        manifests, hours, rows = _window_hours(lake, start, end) if info is not None else ([], [], 0)
        if info is not None:
            context["window"]["hours"] = len(hours)
            reference, note = drift_reference(drift, references.get(info), hours) if rows else (None, None)
            if note:
                context["window"]["reference"] = {"rows": 0 if reference is None else len(reference), "note": note,
                                                  "hours_of_day": references.get(info).record()}
            if reference is None and note:  # an hour of the day without a reference: the live metrics watch it
                context["drift"] = {"judged": False, "reason": note}
            elif reference is not None:
                result, snapshot = check_window(lake, contract, drift, reference, manifests, info.importances)
                html = Path(tmp) / "report.html"
                snapshot.save_html(str(html))
                keys = write_drift_report(lake, result, html, run_id)
                drift_summary = {**result.to_dict(), "report": keys["html"], "summary": keys["summary"]}
                context["drift"] = {"judged": True, **{k: drift_summary[k] for k in (
                    "drift_share", "drifted", "top_features", "top_drifted", "window_drifted", "current_rows",
                    "reference_rows", "basis", "report", "summary")}}
                context["links"]["report"] = lake.url(keys["html"])
            live, by_version, served = live_figures(lake, contract, end, live_settings.window_hours, info.version,
                                                    info.threshold, live_settings.min_mature_labels,
                                                    live_settings.min_label_coverage)
            context["live"], context["live_by_version"] = live.to_dict(), by_version
            context["estimated"] = _estimate(lake, contract, end, info, live_settings, live, served)
            context["bake"] = champion_bake(lake, contract, monitor.bake, registry.model_name, info.version, end)

        def measure(when: datetime) -> float | None:
            return _share(lake, contract, drift, info, references, when)

        judged = judge_window(WindowInputs(end, info, context["drift"], context["live"], history, measure,
                                           context["estimated"]), monitor,
                              timedelta(minutes=contract.label.max_delay_minutes))
        decision = judged.decision
        if learns_reference(monitor, rows, context["live"], decision):
            context["window"]["reference_added"] = _learn(lake, contract, references, info, start, end, hours)
        if decision.retrain:
            context["regime_since"] = judged.regime_since
        mlflow_run = _log_run(registry, run_id, context, decision, html, drift_summary)
        context["links"]["mlflow_run"] = mlflow_run["url"]
        key = record_decision(lake, decision, run_id, context)
        if known is not None:
            known[run_id] = json.loads(json.dumps({**context, "run_id": run_id, **decision.to_dict()}, default=str))
    context["links"]["decision"] = lake.url(key)
    log.info("%s: %s%s: %s", run_id, decision.kind, " (retrain)" if decision.retrain else "", decision.reason)
    if context["bake"]:
        log.log(logging.WARNING if context["bake"]["rollback"] else logging.INFO, "%s: bake: %s", run_id,
                context["bake"]["note"])
    return {"run_id": run_id, "decision": decision.to_dict(), "key": key, **context}


def _window_hours(lake: Lake, start: datetime, end: datetime) -> tuple[list[dict], list[str], int]:
    """The valid telemetry hours in [start, end): their manifests, their starts and their rows (an hour
    whose manifest does not match its content hash is left out, named in the log)."""
    manifests = []
    for manifest in valid_hours(lake, "telemetry", start, end):
        if manifest.get("content_sha256") != manifest_hash(manifest):
            log.warning("skipping %s: manifest: content does not match its content_sha256", manifest["window"]["start"])
            continue
        manifests.append(manifest)
    return manifests, [m["window"]["start"] for m in manifests], sum(int(m.get("rows", 0)) for m in manifests)


def _learn(lake: Lake, contract: Contract, references: ReferenceCache, info: ChampionInfo, start: datetime,
           end: datetime, hours: list[str]) -> list[str]:
    """Add the window's hours whose hour of the day the reference lacks (their rows are read only then)."""
    if not references.get(info).missing({datetime.fromisoformat(h).astimezone(timezone.utc).hour for h in hours}):
        return []
    served, served_hours = window_frame(lake, contract, start, end)
    return references.learn(info, served, served_hours)


def _share(lake: Lake, contract: Contract, drift: DriftSettings, info: ChampionInfo, references: ReferenceCache,
           end: datetime) -> float | None:
    """The drift share of the window ending at `end`, if its last hour is valid and the reference holds its
    hours of the day (no report drawn, no record: `drift_share` gives the check's verdicts)."""
    manifests, hours, _ = _window_hours(lake, end - drift.window_hours * HOUR, end)
    if not hours or hours[-1] != (end - HOUR).isoformat():
        return None
    reference, _ = drift_reference(drift, references.get(info), hours)
    if reference is None:
        return None
    return drift_share(lake, contract, drift, reference, manifests, info.importances)


def _estimate(lake: Lake, contract: Contract, end: datetime, info: ChampionInfo, live_settings: LiveSettings,
              live, matured) -> dict | None:
    """The champion's figures estimated on the live window's span of latest hours (labels not in yet), and
    the estimate on the matured live window (`matured`: the scores the champion served there, read with
    its live figures) checked against its realized AUC; None without a calibration."""
    if info.calibration is None:
        return None
    hours = live_settings.window_hours
    recent = window_scores(lake, contract, Window(end - hours * HOUR, end), info.version)
    return window_estimate(recent, matured, live.roc_auc if live.judged else None, info.calibration, info.threshold,
                           live_settings.estimate_tolerance)


def _log_run(registry: RegistrySettings, run_id: str, context: dict, decision, html: Path | None,
             drift_summary: dict | None) -> dict:
    """The monitoring run in MLflow: figures as metrics, the report and decision as artifacts."""
    mlflow.set_tracking_uri(registry.tracking_uri)
    experiment = mlflow.set_experiment(f"{registry.model_name}-monitoring")
    live, estimated = context["live"] or {}, context["estimated"] or {}
    metrics = {"drift_share": (context["drift"] or {}).get("drift_share"), "live_roc_auc": live.get("roc_auc"),
               "live_pr_auc": live.get("pr_auc"), "live_precision": live.get("precision"),
               "live_recall": live.get("recall"), "label_coverage": live.get("coverage"),
               "mature_labels": live.get("labels"), "retrain": float(decision.retrain),
               "estimated_roc_auc": (estimated.get("recent") or {}).get("roc_auc"),
               "estimate_gap": (estimated.get("matured") or {}).get("gap"),
               "bake_auc_diff": ((context["bake"] or {}).get("test") or {}).get("diff")}
    with mlflow.start_run(run_name=run_id, experiment_id=experiment.experiment_id) as run:
        mlflow.set_tags({"decision": decision.kind, "retrain": str(decision.retrain).lower(),
                         "window_end": context["window"]["end"],
                         "bake_rollback": str(bool((context["bake"] or {}).get("rollback"))).lower(),
                         "champion_version": (context["champion"] or {}).get("version", "")})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})
        mlflow.log_dict({"run_id": run_id, **context, **decision.to_dict()}, "decision.json")
        if drift_summary is not None:
            mlflow.log_dict(drift_summary, "drift/summary.json")
        if html is not None:
            mlflow.log_artifact(str(html), "drift")
    url = run_url(registry.tracking_uri, experiment.experiment_id, run.info.run_id)
    return {"run_id": run.info.run_id, "url": url}


def monitor_hours(lake: Lake, contract: Contract, monitor: MonitorSettings, ends: list[datetime]) -> list[dict]:
    """Monitor several windows in time order (a backlog, a range), each seeing the decisions before it."""
    references = ReferenceCache(lake, contract, monitor.registry)
    info = champion_info(monitor.registry.tracking_uri, monitor.registry.model_name, lake)
    known: dict[str, dict | None] = {}
    return [monitor_hour(lake, contract, monitor, end, references, info, known) for end in sorted(set(ends))]

