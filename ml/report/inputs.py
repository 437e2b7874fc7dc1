"""What the loop report shows, read from the lake: decisions, the registry audit trail, the events
each model version scored per hour and, given the contract, each decision window's live figures per
version as realized once its labels arrived (`ml.report.served`).

A report must never fail on one bad record: a decision or audit line that cannot be read is left out
and named in `LoopInputs.problems`, which the page shows. Every field of a decision but its run id,
kind and `evidence.now` is optional, so older and newer decision records both render.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from ml.audit import read_records
from ml.contract import Contract
from ml.lake import Lake
from ml.lake.layout import decisions_prefix, drift_report_prefix, is_drift_report_key
from ml.lake.window import HOUR
from ml.report.served import read_served, realized


@dataclass(frozen=True)
class DecisionPoint:
    """One monitor run's decision and the measurements behind it, at its window end."""

    run_id: str
    at: datetime
    kind: str
    reason: str = ""
    retrain: bool = False
    suppressed_by: str | None = None
    live_auc: float | None = None
    judged: bool | None = None
    mature_labels: int | None = None
    coverage: float | None = None
    drift_share: float | None = None
    drifted: tuple[str, ...] = ()
    champion_version: str | None = None
    champion_auc: float | None = None
    auc_floor: float | None = None
    drift_threshold: float | None = None
    report_key: str | None = None
    report_link: str | None = None
    mlflow_run: str | None = None
    min_labels: int | None = None
    live_hours: int | None = None
    by_version: dict[str, dict] = field(default_factory=dict)  # at the monitor's run: version -> figures
    realized: dict[str, dict] = field(default_factory=dict)  # at report time, on [at - live_hours, at)
    estimated: dict[str, dict] = field(default_factory=dict)  # at the monitor's run, on [at - live_hours, at)


@dataclass
class LoopInputs:
    """Everything the page draws: decisions oldest first, audit records oldest first (each with its
    parsed time), events per hour per model version, the latest drift report's key, and what was
    left out."""

    decisions: list[DecisionPoint] = field(default_factory=list)
    audit: list[tuple[datetime | None, dict]] = field(default_factory=list)
    serving: dict[datetime, dict[str, int]] = field(default_factory=dict)
    drift_report: str | None = None
    problems: list[str] = field(default_factory=list)


def parse_time(value) -> datetime | None:
    """An ISO time as an aware UTC datetime (naive means UTC); None when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def _num(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _dict(record: dict, name: str) -> dict:
    value = record.get(name)
    return value if isinstance(value, dict) else {}


def decision_point(record: dict) -> DecisionPoint:
    """The report's view of one decision record; ValueError names what a record must have."""
    evidence = _dict(record, "evidence")
    at = parse_time(evidence.get("now"))
    if not isinstance(record.get("run_id"), str) or not isinstance(record.get("kind"), str) or at is None:
        raise ValueError("not a decision record (needs run_id, kind and evidence.now as an ISO time)")
    live, drift, champion = _dict(record, "live"), _dict(record, "drift"), _dict(record, "champion")
    policy, links = _dict(record, "policy"), _dict(record, "links")
    shares = evidence.get("drift_shares")
    last_share = _num(shares[-1]) if isinstance(shares, list) and shares else None
    coverage, predictions = _num(live.get("coverage")), _num(live.get("predictions"))
    if coverage is None and predictions and _num(live.get("labels")) is not None:
        coverage = live["labels"] / predictions
    if predictions == 0:
        coverage = None  # nothing was served to be labelled: no coverage to show
    drifted = drift.get("drifted") if isinstance(drift.get("drifted"), list) else []
    version = champion.get("version")
    live_auc = _num(live.get("roc_auc")) if "roc_auc" in live else _num(evidence.get("live_auc"))
    mature = int(m) if (m := _num(live.get("mature", evidence.get("mature_labels")))) is not None else None
    by_version = _by_version(record.get("live_by_version"))
    served_by = live.get("version") if live.get("version") is not None else version
    if not by_version and live_auc is not None and served_by is not None:  # a record from before per version
        by_version = {str(served_by): {"roc_auc": live_auc, "labels": mature, "coverage": coverage}}
    start, end = parse_time(live.get("start")), parse_time(live.get("end"))
    min_labels = _num(policy.get("min_mature_labels"))
    return DecisionPoint(
        run_id=record["run_id"], at=at, kind=record["kind"], reason=str(record.get("reason") or ""),
        retrain=record.get("retrain") is True, suppressed_by=record.get("suppressed_by") or None,
        live_auc=live_auc, judged=live.get("judged") if isinstance(live.get("judged"), bool) else None,
        mature_labels=mature,
        coverage=coverage,
        drift_share=_num(drift.get("drift_share")) if "drift_share" in drift else last_share,
        drifted=tuple(str(f) for f in drifted),
        champion_version=None if version is None else str(version),
        champion_auc=_num(champion.get("holdout_roc_auc")) if "holdout_roc_auc" in champion
        else _num(evidence.get("champion_auc")),
        auc_floor=_num(policy.get("live_auc_floor")), drift_threshold=_num(policy.get("drift_share_threshold")),
        report_key=drift.get("report") if isinstance(drift.get("report"), str) else None,
        report_link=links.get("report") if isinstance(links.get("report"), str) else None,
        mlflow_run=links.get("mlflow_run") if isinstance(links.get("mlflow_run"), str) else None,
        min_labels=None if min_labels is None else int(min_labels),
        live_hours=round((end - start) / HOUR) if start and end and end > start else None, by_version=by_version,
        estimated=_estimated(record, version),
    )


def _estimated(record: dict, version) -> dict[str, dict]:
    """The champion's AUC estimated before labels on the latest hours (`estimated.recent`), with whether
    the estimator was found unreliable on the matured window."""
    estimated = _dict(record, "estimated")
    auc = _num(_dict(estimated, "recent").get("roc_auc"))
    if auc is None or version is None:
        return {}
    return {str(version): {"roc_auc": auc, "rows": _num(_dict(estimated, "recent").get("rows")),
                           "unreliable": estimated.get("unreliable") is True}}


def _by_version(value) -> dict[str, dict]:
    """A record's `live_by_version` (version: figures), keeping only numbers."""
    if not isinstance(value, dict):
        return {}
    return {str(v): {k: _num(x) for k, x in figures.items()} for v, figures in value.items() if isinstance(figures, dict)}


def read_decisions(lake: Lake, model_name: str, since: datetime | None, problems: list[str]) -> list[DecisionPoint]:
    points = []
    for key in lake.list(decisions_prefix()):
        if not key.endswith(".json"):
            continue
        try:
            record = json.loads(lake.read_text(key))
            point = decision_point(record)
        except (ValueError, UnicodeDecodeError, AttributeError) as exc:  # JSONDecodeError is a ValueError
            problems.append(f"{key}: left out, {exc}")
            continue
        if record.get("model") in (None, model_name) and (since is None or point.at >= since):
            points.append(point)
    return sorted(points, key=lambda p: (p.at, p.run_id))


def read_audit(lake: Lake, model_name: str, since: datetime | None,
               problems: list[str]) -> list[tuple[datetime | None, dict]]:
    records, unreadable = read_records(lake)
    problems.extend(unreadable)
    out = []
    for record in records:
        at = parse_time(record.get("at"))
        if record.get("model") in (None, model_name) and (since is None or at is None or at >= since):
            out.append((at, record))
    return out


def latest_drift_report(lake: Lake, decisions: list[DecisionPoint]) -> str | None:
    """The key of the newest drift report: the latest decision's, else the newest in the lake."""
    for point in reversed(decisions):
        if point.report_key:
            return point.report_key
    reports = [k for k in lake.list(drift_report_prefix()) if is_drift_report_key(k)]
    return reports[-1] if reports else None


def read_loop(lake: Lake, model_name: str, since: datetime | None = None, contract: Contract | None = None) -> LoopInputs:
    """Read what the loop left in the lake (at or after `since` when given); with the event `contract`,
    also every decision window's figures per version realized by now. Each lake hour is read once."""
    inputs = LoopInputs()
    inputs.decisions = read_decisions(lake, model_name, since, inputs.problems)
    inputs.audit = read_audit(lake, model_name, since, inputs.problems)
    windows = [(p.at - (p.live_hours or 1) * HOUR, p.at) for p in inputs.decisions]
    keep_from = min((start for start, _ in windows), default=since)
    served = read_served(lake, model_name, contract, since, keep_from, inputs.problems)
    inputs.serving = served.counts
    if contract is not None:
        inputs.decisions = [replace(p, realized=realized(served, contract, start, end) or {})
                            for p, (start, end) in zip(inputs.decisions, windows)]
    inputs.drift_report = latest_drift_report(lake, inputs.decisions)
    return inputs
