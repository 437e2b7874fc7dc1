"""What the monitor hands over: each window's outcome (between its tasks) and the retrain it asks for.

    outcome = WindowOutcome.of(monitor_hour(...), loop_report_url)     # -> to_dict() as a task's value
    ask = RetrainAsk.of([WindowOutcome.from_dict(d) for d in values])   # None when nothing asks
    extra = ask.to_dict()                                               # the retrain_request Asset's extra
    RetrainAsk.from_dict(event.extra).regime_since                      # what retrain_model reads

Both are JSON-able through `to_dict`/`from_dict`, so a value that crosses a task or an Asset is read
by name and type, never by raw keys. `RetrainAsk.from_dict` accepts an extra a person wrote by hand
(only a reason, or nothing): every field has a default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class WindowOutcome:
    """One monitored window: its decision (kind, whether it retrains, what held it back, why), the drift
    share and live AUC it saw, the champion it judged, where the new regime began, its links, and the
    bake verdict of a champion on probation (`ml.monitor.bake`; None when it was not on probation)."""

    run_id: str
    window: dict
    kind: str
    retrain: bool
    reason: str
    suppressed_by: str | None = None
    drift_share: float | None = None
    live_auc: float | None = None
    champion: str | None = None
    regime_since: str | None = None
    links: dict = field(default_factory=dict)
    bake: dict | None = None

    @property
    def end(self) -> str:
        """The end of the window, an ISO time."""
        return self.window["end"]

    @classmethod
    def of(cls, outcome: dict, loop_report: str | None = None) -> "WindowOutcome":
        """The outcome of one window as `ml.monitor.monitor_hour` returns it, with the loop report's link."""
        decision = outcome["decision"]
        return cls(run_id=outcome["run_id"], window=dict(outcome["window"]), kind=decision["kind"],
                   retrain=bool(decision["retrain"]), reason=decision["reason"],
                   suppressed_by=decision["suppressed_by"], drift_share=(outcome["drift"] or {}).get("drift_share"),
                   live_auc=(outcome["live"] or {}).get("roc_auc"), champion=(outcome["champion"] or {}).get("version"),
                   regime_since=outcome.get("regime_since"),
                   links={**outcome["links"], **({"loop_report": loop_report} if loop_report else {})},
                   bake=outcome.get("bake"))

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "window": dict(self.window), "kind": self.kind, "retrain": self.retrain,
                "suppressed_by": self.suppressed_by, "reason": self.reason, "drift_share": self.drift_share,
                "live_auc": self.live_auc, "links": dict(self.links), "champion": self.champion,
                "regime_since": self.regime_since, "bake": self.bake}

    @classmethod
    def from_dict(cls, data: dict) -> "WindowOutcome":
        return cls(run_id=data["run_id"], window=dict(data["window"]), kind=data["kind"],
                   retrain=bool(data["retrain"]), reason=data["reason"], suppressed_by=data.get("suppressed_by"),
                   drift_share=data.get("drift_share"), live_auc=data.get("live_auc"),
                   champion=data.get("champion"), regime_since=data.get("regime_since"),
                   links=dict(data.get("links") or {}), bake=data.get("bake"))


@dataclass(frozen=True)
class RetrainAsk:
    """A retrain the monitor asks for (the retrain_request Asset's extra): the latest asking decision's
    kind (`reason`), its words (`detail`), run and window, the champion version the decisions judged,
    their links, where the earliest of them saw the new regime begin, and every asking decision's run."""

    reason: str = "request"
    detail: str = ""
    run_id: str | None = None
    window_end: str | None = None
    champion: str | None = None
    links: dict = field(default_factory=dict)
    regime_since: datetime | None = None
    decisions: tuple[str, ...] = ()

    @classmethod
    def of(cls, outcomes: list[WindowOutcome]) -> "RetrainAsk | None":
        """The ask for the retrain decisions among `outcomes` (oldest first), or None when none retrains."""
        asked = [o for o in outcomes if o.retrain]
        if not asked:
            return None
        last = asked[-1]
        since = sorted(datetime.fromisoformat(o.regime_since) for o in asked if o.regime_since)
        return cls(reason=last.kind, detail=last.reason, run_id=last.run_id, window_end=last.end,
                   champion=last.champion, links=dict(last.links), regime_since=since[0] if since else None,
                   decisions=tuple(o.run_id for o in asked))

    def to_dict(self) -> dict:
        return {"reason": self.reason, "decision": self.reason, "detail": self.detail, "run_id": self.run_id,
                "window_end": self.window_end, "champion": self.champion, "links": dict(self.links),
                "regime_since": self.regime_since.isoformat() if self.regime_since else None,
                "decisions": list(self.decisions)}

    @classmethod
    def from_dict(cls, data: dict) -> "RetrainAsk":
        since = data.get("regime_since")
        return cls(reason=str(data.get("reason") or data.get("decision") or "request"),
                   detail=str(data.get("detail") or ""), run_id=data.get("run_id"),
                   window_end=data.get("window_end"), champion=data.get("champion"),
                   links=dict(data.get("links") or {}),
                   regime_since=datetime.fromisoformat(str(since)) if since else None,
                   decisions=tuple(data.get("decisions") or ()))
