"""One policy played over the stream, hour by hour in event-time order, as the paced loop plays it.

After the first champion (trained on the first `history_hours`; like any promotion it serves from
the history's end plus the offload's lateness, as the loop's sidecar does), for each hour h
ending at E = h + 1 h:
1. the champion serves h's events (the model whose promotion took effect before each event's time);
2. the monitor judges the window ending at E (`ml.monitor.judge.judge_window`): drift of the valid
   hours of its window against the champion's reference, live metrics of the champion's own
   predictions whose labels were observed before E (`ml.monitor.live.judge_live`), the decisions of
   the 24 hours before; a calendar policy asks for a retrain every K windows instead;
3. a retrain asked for waits, as `regime_request` does, until `regime_hours` hours since the change
   have mature labels (every outcome hour up to the label's longest delay offloaded: those before E),
   or gives up after `regime_timeout_hours`; it then trains on its window (`fit_candidate`), compares
   the candidate with the champion on the candidate's holdout and judges it with the gates;
4. a candidate the gates pass is promoted: it serves events from E + the offload's lateness on, the
   moment the paced loop streams again. Windows, decisions and training windows are whole hours; only
   the swap falls inside an hour, at E + lateness, as in the loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from ml.backtest.data import Stream
from ml.backtest.models import Model, Models
from ml.backtest.policies import EVERY, MONITOR, PolicySpec
from ml.lake.window import HOUR
from ml.monitor.judge import WindowInputs, judge_window, learns_reference
from ml.monitor.live import judge_live, live_window
from ml.train import DatasetError, plan_request
from ml.train.retrain import RetrainRequest, regime_ready

HISTORY = timedelta(hours=24)  # the decisions monitor_hour reads back


@dataclass
class Retrain:
    """A retrain asked for at `asked_at` (a window's end): when it trained, on what window, the gates'
    verdict (None when it did not train: `note` says why) and the version it became if promoted."""

    asked_at: datetime
    trigger: str
    trained_at: datetime | None = None
    window: tuple[datetime, datetime] | None = None
    passed: bool | None = None
    failed_gates: tuple[str, ...] = ()
    version: str | None = None
    effective: datetime | None = None
    note: str = ""


@dataclass
class PolicyRun:
    """What one policy did: per hour its decision (`hours`), the retrains, and every served prediction
    with its eventual label (`served`: event id, time, version, score, label)."""

    spec: PolicySpec
    hours: list[dict] = field(default_factory=list)
    retrains: list[Retrain] = field(default_factory=list)
    served: pd.DataFrame | None = None


def run_policy(stream: Stream, spec: PolicySpec, models: Models, first: Model, serving_from: datetime,
               lateness: timedelta) -> PolicyRun:
    """Play `spec` from `serving_from` (the first champion's promotion) to the stream's last hour."""
    contract, label = stream.contract, stream.contract.label
    delay = timedelta(minutes=label.max_delay_minutes)
    state = _State(first, "1", first.reference, [(serving_from + lateness, first, "1")])
    run, served, pending = PolicyRun(spec), {}, None
    for i, hour in enumerate(h for h in stream.hours if h >= serving_from):
        end = hour + HOUR
        served[hour] = _serve(stream, models, hour, state.timeline)
        row = {"hour": hour, "rows": len(served[hour]), "champion": state.version}
        if spec.kind == EVERY and (i + 1) % spec.every == 0:
            pending = (plan_request("schedule", spec.retrain.window_days, end), Retrain(end, "schedule"))
        elif spec.kind == MONITOR:
            info = state.model.info(state.version)
            drift = models.drift(spec.monitor.drift, state.model, state.reference, end)
            window = live_window(contract, end, spec.monitor.live.window_hours)
            preds = pd.concat([served[h] for h in served if window.start <= h < window.end] or [served[hour].iloc[:0]])
            preds = preds[preds["version"] == state.version]
            live = judge_live(window, state.version, info.threshold, preds, preds[preds["observed_at"] < end],
                              "label", spec.monitor.live.min_mature_labels,
                              spec.monitor.live.min_label_coverage).to_dict()
            history = [r for r in state.history if end - datetime.fromisoformat(r["evidence"]["now"]) <= HISTORY]

            def measure(when: datetime) -> float | None:
                return models.share(spec.monitor.drift, state.model, state.reference, when)

            judged = judge_window(WindowInputs(end, info, drift, live, history, measure), spec.monitor, delay)
            decision = judged.decision
            hours = stream.valid_hours(end - spec.monitor.drift.window_hours * HOUR, end)
            if learns_reference(spec.monitor, len(hours), live, decision):
                state.reference, _ = state.reference.with_served(stream.frame(hours), [h.isoformat() for h in hours])
            state.history.insert(0, {"evidence": {"now": end.isoformat()}, "drift": drift, "retrain": decision.retrain,
                                     "champion": {"version": state.version}, "regime_since": judged.regime_since})
            row.update(kind=decision.kind, retrain=decision.retrain, suppressed_by=decision.suppressed_by,
                       reason=decision.reason, drift_share=(drift or {}).get("drift_share"), live_auc=live["roc_auc"])
            if decision.retrain:
                request = plan_request(decision.kind, spec.retrain.window_days, end)
                if judged.regime_since and spec.retrain.regime_hours > 0:
                    request = replace(request, regime_since=datetime.fromisoformat(judged.regime_since))
                pending = (request, Retrain(end, decision.kind))
        if pending is not None:
            pending = _advance(stream, spec, models, state, run, pending, end, delay, lateness)
        run.hours.append(row)
    run.served = pd.concat(served.values(), ignore_index=True) if served else None
    return run


@dataclass
class _State:
    model: Model
    version: str
    reference: object
    timeline: list[tuple[datetime, Model, str]]
    history: list[dict] = field(default_factory=list)  # newest first, as monitor_hour reads it


def _serve(stream: Stream, models: Models, hour: datetime, timeline: list) -> pd.DataFrame:
    """The hour's events scored by the champion of each event's time, with their eventual labels."""
    contract, events = stream.contract, stream.events[hour]
    times = events[contract.event_time]
    scores, versions, flagged = np.zeros(len(events)), np.empty(len(events), dtype=object), np.zeros(len(events), bool)
    for i, (since, model, version) in enumerate(timeline):
        until = timeline[i + 1][0] if i + 1 < len(timeline) else None
        mask = (times >= pd.Timestamp(since)).to_numpy()
        if until is not None:
            mask &= (times < pd.Timestamp(until)).to_numpy()
        if mask.any():
            scores[mask] = models.scores(model, hour)[mask]
            versions[mask], flagged[mask] = version, scores[mask] >= model.threshold
    out = pd.DataFrame({contract.event_id: events[contract.event_id].to_numpy(), "ts": times.to_numpy(),
                        "version": versions, "score": scores, "flagged": flagged})
    out = out[pd.notna(out["version"])].reset_index(drop=True)
    outcomes = stream.outcomes.reindex(out[contract.event_id].to_numpy())
    return out.assign(label=outcomes["label"].array, observed_at=outcomes["observed_at"].array)


def _mature(stream: Stream, since: datetime, end: datetime, delay: timedelta) -> list[datetime]:
    """The valid hours from `since` whose outcome hours (up to the label's longest delay) closed before `end`."""
    span = -(-(HOUR + delay) // HOUR)  # outcome hours an hour's labels may fall in
    return [h for h in stream.valid_hours(since, end) if h + span * HOUR <= end]


def _advance(stream: Stream, spec: PolicySpec, models: Models, state: _State, run: PolicyRun,
             pending: tuple[RetrainRequest, Retrain], end: datetime, delay: timedelta, lateness: timedelta):
    """Train the pending request if its data is there (returns None), or keep it waiting."""
    request, record = pending
    if request.regime_since is not None and spec.retrain.regime_hours > 0:
        ready, status = regime_ready(request, _mature(stream, request.regime_since, end, delay),
                                     spec.retrain.regime_hours, end)
        if ready is None:
            if end - record.asked_at >= timedelta(hours=spec.retrain.regime_timeout_hours):
                run.retrains.append(replace(record, note=f"gave up waiting for the new regime: {status}"))
                return None
            return pending
        request = ready
    record.trained_at, record.window = end, (request.start, request.end)
    try:
        trained = models.challenge(state.model, state.version, request.start, request.end, request.as_of,
                                   spec.gates, spec.retrain)
    except DatasetError as exc:
        run.retrains.append(replace(record, note=f"not trained: {exc}"))
        return None
    record.passed = trained.passed
    record.failed_gates = tuple(g.name for g in trained.gates if not g.passed)
    if trained.passed:
        version = str(int(state.version) + 1)
        state.model, state.version, state.reference = trained.model, version, trained.model.reference
        state.timeline.append((end + lateness, trained.model, version))
        record.version, record.effective = version, end + lateness
    run.retrains.append(record)
    return None
