"""The monitor's judgement of one window, pure: what was measured and what came before, to a decision.

    judged = judge_window(WindowInputs(end, info, drift, live, history, measure), monitor, label_delay)
    judged.decision.kind, judged.decision.retrain, judged.regime_since

`monitor_hour` gathers the inputs from the lake and the registry and records the outcome; the backtest
(`ml.backtest`) gathers them in memory from a recorded file. Both decide here, so a policy judged by
the backtest is the one the monitor applies:
- the drift shares the policy sees: the window's own (when it was judged for drift) after those of the
  `windows_k - 1` windows before it (`drift_chain`: recorded ones, or measured now by `measure`);
- the live AUC and its labels (only when the live metrics were judged), the AUC estimated on the
  latest hours before their labels (when trusted: `trusted_estimate`), the champion's holdout AUC and
  age, the retrains asked for in the history (cooldown, budget) and a retrain still waiting for the new
  regime's data (`pending_until`);
- where a retrain should start learning (`regime_since`), and whether the window's hours may join the
  champion's drift reference (`learns_reference`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Callable

from ml.lake.window import HOUR
from ml.monitor.champion import ChampionInfo
from ml.policy import DATA, METRIC, NONE, Decision, Evidence, Policy, decide
from ml.settings import MonitorSettings


@dataclass(frozen=True)
class WindowInputs:
    """What was gathered for the window ending at `end`: the champion (None before the first), the drift
    verdict (`{"judged": bool, "drift_share": ...}`, None when not measured), the live metrics
    (`LiveMetrics.to_dict()`, None without a champion), the decisions of the hours before (newest
    first, as recorded), how to measure an earlier window's drift share (None for a gap), and the
    figures estimated before labels (`ml.monitor.estimate.window_estimate`, None when not estimated)."""

    end: datetime
    info: ChampionInfo | None
    drift: dict | None
    live: dict | None
    history: list[dict]
    measure: Callable[[datetime], float | None]
    estimate: dict | None = None


@dataclass(frozen=True)
class Judgement:
    """The evidence, the decision, the drift shares it rests on (oldest first) and, for a retrain, where
    the new regime began (ISO time, or None)."""

    evidence: Evidence
    decision: Decision
    shares: tuple[float, ...]
    regime_since: str | None


def judge_window(inputs: WindowInputs, monitor: MonitorSettings, label_delay: timedelta) -> Judgement:
    """The decision on one window under the drift, live and retrain sections of `monitor`; `label_delay`
    is the contract's longest label delay. Pure: the same inputs and settings give the same judgement."""
    end, info, drift, live = inputs.end, inputs.info, inputs.drift or {}, inputs.live or {}
    shares: list[float] = []  # a window not judged for drift breaks the run of drifted windows
    if info is not None and drift.get("judged"):
        shares = drift_chain(inputs.history, end, monitor.drift.windows_k - 1, inputs.measure, info.version) + [
            float(drift["drift_share"])]
    evidence = Evidence(
        now=end, drift_shares=tuple(shares), live_auc=live.get("roc_auc") if live.get("judged") else None,
        live_labels=int(live.get("labels") or 0), mature_labels=int(live.get("mature") or 0),
        champion_auc=info.holdout_roc_auc if info else None, model_age_hours=info.age_hours(end) if info else None,
        recent_retrains=recent_retrains(inputs.history),
        pending_until=pending_until(inputs.history, info.version if info else None, monitor.retrain.regime_hours,
                                    label_delay), **trusted_estimate(inputs.estimate))
    decision = decide(evidence, Policy.from_settings(monitor.drift, monitor.live, monitor.retrain))
    if info is None:
        decision = replace(decision, kind=NONE, reason="no champion to monitor yet: train and promote one first",
                           fired=(), suppressed_by=None)
    since = regime_since(decision.kind, end, shares, inputs.live) if decision.retrain else None
    return Judgement(evidence, decision, tuple(shares), since)


def trusted_estimate(estimate: dict | None) -> dict:
    """The evidence's estimated AUC and its predictions: none when not estimated or when this window's
    matured check found the estimate far from the realized AUC (the estimator cannot see concept drift)."""
    if not estimate or estimate.get("unreliable") or (estimate.get("recent") or {}).get("roc_auc") is None:
        return {}
    return {"estimated_auc": float(estimate["recent"]["roc_auc"]), "estimated_rows": int(estimate["recent"]["rows"])}


def learns_reference(monitor: MonitorSettings, rows: int, live: dict | None, decision: Decision) -> bool:
    """Whether the window's hours become the champion's drift reference for their hours of the day: hours
    served with valid data and live metrics judged healthy (no metric trigger)."""
    return bool(rows and monitor.drift.match_hour_of_day and (live or {}).get("judged") and METRIC not in decision.fired)


def whole_hour(value: datetime) -> datetime:
    """`value` as an aware UTC datetime on a whole hour; anything else is refused with the fix."""
    if value.tzinfo is None:
        raise ValueError(f"monitor: {value.isoformat()} has no time zone; give UTC times such as 2026-11-22T14:00Z")
    value = value.astimezone(timezone.utc)
    if value != value.replace(minute=0, second=0, microsecond=0):
        raise ValueError(f"monitor: windows end on whole hours; {value.isoformat()} is not one")
    return value


def drift_chain(history: list[dict], end: datetime, windows: int, measure, version: str | None = None) -> list[float]:
    """Drift shares of the `windows` hourly windows just before `end`, oldest first, stopping at the
    first gap (a window without data, or not judged for drift: it is not a drifted window). A window
    without a recorded decision yet (validated hours arrive out of order in backfills and retries), or
    recorded against another champion's reference (`version`), is measured now by `measure(window_end)`,
    which returns None for a gap."""
    by_end = {r["evidence"]["now"]: r for r in history}
    shares = []
    for back in range(1, windows + 1):
        when = end - back * HOUR
        record = by_end.get(when.isoformat())
        if record is not None and version is not None and (record.get("champion") or {}).get("version") != version:
            record = None
        share = (record.get("drift") or {}).get("drift_share") if record else measure(when)
        if share is None:
            break
        shares.append(float(share))
    return shares[::-1]


def recent_retrains(decisions: list[dict]) -> tuple[datetime, ...]:
    return tuple(sorted(datetime.fromisoformat(r["evidence"]["now"]) for r in decisions if r.get("retrain")))


def regime_since(kind: str, end: datetime, shares: list[float], live: dict | None) -> str | None:
    """Where the regime a retrain should learn begins, or None (a calendar retrain keeps its window).

    - data: the last hour of the first window of the drifted run (the earliest hour the check saw the
      change in; the window before it was still under the threshold);
    - metric: the start of the live window whose accuracy fell."""
    if kind == DATA and shares:
        return (end - len(shares) * HOUR).isoformat()
    if kind == METRIC and live and live.get("start"):
        return whole_hour(datetime.fromisoformat(live["start"])).isoformat()
    return None


def pending_until(history: list[dict], version: str | None, regime_hours: int, label_delay: timedelta) -> datetime | None:
    """Until when the latest retrain asked for champion `version` may still be waiting for its data: the
    last of its `regime_hours` hours since the change has closed and its labels' longest delay has
    passed, plus an hour for the offload. A later champion, or a request without a regime, waits for nothing."""
    for record in history:  # newest first
        if not record.get("retrain"):
            continue
        same = (record.get("champion") or {}).get("version") == version
        if not (same and record.get("regime_since") and regime_hours > 0):
            return None
        delay = timedelta(hours=math.ceil(label_delay / HOUR))
        return datetime.fromisoformat(record["regime_since"]) + regime_hours * HOUR + delay + HOUR
    return None
