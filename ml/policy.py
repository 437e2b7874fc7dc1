"""The retrain policy: a pure function from what monitoring saw to a decision, and its record in the lake.

Three triggers, strongest evidence first when several fire:
- `metric`: the live AUC, on enough mature labels, is under a floor or has dropped from the champion's
  holdout AUC by more than a margin. The model is measurably worse: nothing says more. Optionally
  (`estimate_auc_floor` above 0) the AUC estimated on the latest hours before their labels arrive,
  when the estimator has not been found unreliable, fires it early under its own, lower floor.
- `data`: the share of drifted features was at or above its threshold for k consecutive windows. Inputs moved,
  which often precedes a worse model; one window alone is a spike, not a trend.
- `schedule`: the champion is older than its maximum age, a retrain for hygiene with no symptom.
A cooldown after each retrain and a budget of retrains per 24 hours stop retrain storms, and a retrain
already asked for the same champion that is still waiting for the new regime's data (`pending_until`)
holds the next one: a suppressed trigger keeps its kind and says what held it back. Every decision, `none` included, is written to
the lake (`ml.lake.layout.decision_key`) with its evidence, so a person can see why a model did or did not change.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from ml.lake import Lake
from ml.lake.layout import decision_key
from ml.settings import DriftSettings, LiveSettings, RetrainSettings

METRIC, DATA, SCHEDULE, NONE = "metric", "data", "schedule", "none"
PRECEDENCE = (METRIC, DATA, SCHEDULE)
COOLDOWN, BUDGET, PENDING = "cooldown", "budget", "pending"


@dataclass(frozen=True)
class Evidence:
    """What monitoring measured at `now`: drift shares of the last windows (newest last), the live AUC
    and how many labels it rests on (all joined, and mature: past the label's maximum delay), the
    champion's holdout AUC, the champion's age, when the recent retrains were asked for, and the AUC
    estimated on the latest hours' predictions before their labels (`ml.monitor.estimate`; None when
    not estimated or when the estimator was found unreliable) with how many predictions it rests on."""

    now: datetime
    drift_shares: tuple[float, ...] = ()
    live_auc: float | None = None
    live_labels: int = 0
    mature_labels: int = 0
    champion_auc: float | None = None
    model_age_hours: float | None = None
    recent_retrains: tuple[datetime, ...] = ()
    pending_until: datetime | None = None  # a retrain asked for this champion waits for its data until then
    estimated_auc: float | None = None  # the latest hours' AUC estimated before their labels, if trusted
    estimated_rows: int = 0

    def to_dict(self) -> dict:
        out = asdict(self)
        out["now"] = self.now.isoformat()
        out["drift_shares"] = list(self.drift_shares)
        out["recent_retrains"] = [t.isoformat() for t in self.recent_retrains]
        out["pending_until"] = self.pending_until.isoformat() if self.pending_until else None
        return out


@dataclass(frozen=True)
class Policy:
    """The thresholds the decision applies; `from_settings` takes them from the drift, live and retrain
    sections of the settings."""

    drift_share_threshold: float = 0.3
    drift_windows_k: int = 3
    live_auc_floor: float = 0.70
    live_auc_drop_margin: float = 0.05
    min_mature_labels: int = 500
    max_model_age_hours: float = 14 * 24.0
    cooldown_hours: float = 6.0
    daily_budget: int = 3
    estimate_auc_floor: float = 0.0  # 0: the estimate never asks for a retrain

    @classmethod
    def from_settings(cls, drift: DriftSettings, live: LiveSettings, retrain: RetrainSettings) -> "Policy":
        return cls(
            drift_share_threshold=drift.share_threshold, drift_windows_k=drift.windows_k,
            live_auc_floor=live.auc_floor, live_auc_drop_margin=live.auc_drop_margin,
            min_mature_labels=live.min_mature_labels, max_model_age_hours=retrain.max_model_age_hours,
            cooldown_hours=retrain.cooldown_hours, daily_budget=retrain.daily_budget,
            estimate_auc_floor=live.estimate_auc_floor,
        )


@dataclass(frozen=True)
class Decision:
    """The trigger chosen (`none` when nothing fired), why, every trigger that fired, the evidence, and
    what held a retrain back (None, 'pending', 'cooldown' or 'budget')."""

    kind: str
    reason: str
    evidence: dict
    fired: tuple[str, ...] = ()
    suppressed_by: str | None = None
    policy: dict = field(default_factory=dict)

    @property
    def retrain(self) -> bool:
        """True when this decision asks for a retrain now."""
        return self.kind != NONE and self.suppressed_by is None

    def to_dict(self) -> dict:
        return {**asdict(self), "fired": list(self.fired), "retrain": self.retrain}


def decide(evidence: Evidence, policy: Policy) -> Decision:
    """Apply the policy to the evidence. Pure: the same evidence and policy give the same decision."""
    checks = {METRIC: _metric(evidence, policy), DATA: _data(evidence, policy), SCHEDULE: _schedule(evidence, policy)}
    fired = tuple(kind for kind in PRECEDENCE if checks[kind][0])
    notes = "; ".join(note for _, note in checks.values())
    common = dict(evidence=evidence.to_dict(), fired=fired, policy=asdict(policy))
    if not fired:
        return Decision(NONE, f"no trigger fired: {notes}", **common)
    kind = fired[0]
    reason = checks[kind][1] + (f" (also fired: {', '.join(fired[1:])})" if len(fired) > 1 else "")
    held = _suppression(evidence, policy)
    if held:
        return Decision(kind, f"{reason}; retrain suppressed: {held[1]}", suppressed_by=held[0], **common)
    return Decision(kind, reason, **common)


def _metric(ev: Evidence, p: Policy) -> tuple[bool, str]:
    fired, note = _live(ev, p)
    if fired or not p.estimate_auc_floor or ev.estimated_auc is None:
        return fired, note
    if ev.estimated_rows < p.min_mature_labels:
        return False, f"{note}; estimated AUC not judged ({ev.estimated_rows} predictions, need {p.min_mature_labels})"
    if ev.estimated_auc < p.estimate_auc_floor:
        return True, (f"estimated AUC {ev.estimated_auc:.4f} < estimate floor {p.estimate_auc_floor:.4f} on "
                      f"{ev.estimated_rows} predictions not labelled yet ({note})")
    return False, f"{note}; estimated AUC {ev.estimated_auc:.4f} >= estimate floor {p.estimate_auc_floor:.4f}"


def _live(ev: Evidence, p: Policy) -> tuple[bool, str]:
    if ev.live_auc is None or ev.mature_labels < p.min_mature_labels:
        return False, f"live AUC not judged ({ev.mature_labels} mature labels, need {p.min_mature_labels})"
    if ev.live_auc < p.live_auc_floor:
        return True, f"live AUC {ev.live_auc:.4f} < floor {p.live_auc_floor:.4f} on {ev.mature_labels} mature labels"
    if ev.champion_auc is not None and ev.champion_auc - ev.live_auc > p.live_auc_drop_margin:
        return True, (f"live AUC {ev.live_auc:.4f} dropped {ev.champion_auc - ev.live_auc:.4f} from holdout "
                      f"{ev.champion_auc:.4f} (margin {p.live_auc_drop_margin:.4f}) on {ev.mature_labels} mature labels")
    return False, f"live AUC {ev.live_auc:.4f} healthy on {ev.mature_labels} mature labels"


def _data(ev: Evidence, p: Policy) -> tuple[bool, str]:
    last = ev.drift_shares[-p.drift_windows_k:]
    over = 0
    for share in reversed(ev.drift_shares):
        if share < p.drift_share_threshold:
            break
        over += 1
    shown = ", ".join(f"{s:.2f}" for s in last) or "none"
    if over >= p.drift_windows_k:
        return True, (f"drift share at or above {p.drift_share_threshold:.2f} for {over} consecutive windows "
                      f"(need {p.drift_windows_k}; last: {shown})")
    return False, (f"drift share at or above {p.drift_share_threshold:.2f} for {over} of {p.drift_windows_k} windows "
                   f"(last: {shown})")


def _schedule(ev: Evidence, p: Policy) -> tuple[bool, str]:
    if ev.model_age_hours is None:
        return False, "no champion age known"
    older = ev.model_age_hours > p.max_model_age_hours
    return older, f"model age {ev.model_age_hours:.1f} h {'>' if older else '<='} max {p.max_model_age_hours:g} h"


def _suppression(ev: Evidence, p: Policy) -> tuple[str, str] | None:
    if ev.pending_until is not None and ev.now < ev.pending_until:
        return PENDING, (f"a retrain asked for this champion is waiting for the new regime's labelled hours "
                         f"(until {ev.pending_until.isoformat()} at the latest)")
    past = sorted(t for t in ev.recent_retrains if t <= ev.now)
    if past and ev.now - past[-1] < timedelta(hours=p.cooldown_hours):
        since = (ev.now - past[-1]) / timedelta(hours=1)
        return COOLDOWN, f"last retrain {since:.1f} h ago, cooldown {p.cooldown_hours:g} h"
    today = [t for t in past if ev.now - t < timedelta(hours=24)]
    if len(today) >= p.daily_budget:
        return BUDGET, f"{len(today)} retrains in the last 24 h, budget {p.daily_budget}"
    return None


def record_decision(lake: Lake, decision: Decision, run_id: str, context: dict | None = None) -> str:
    """Write the decision and its evidence to the lake under `run_id`, with `context` (the window, the
    champion, the drift and live figures, links to the reports); returns the key."""
    key = decision_key(run_id)
    record = {**(context or {}), "run_id": run_id, **decision.to_dict()}
    lake.write_text(key, json.dumps(record, sort_keys=True, indent=2, default=str))
    return key
