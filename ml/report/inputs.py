"""What the loop report shows, read from the lake: decisions, the registry audit trail, and the events
each model version scored per hour.

A report must never fail on one bad record: a decision or audit line that cannot be read is left out
and named in `LoopInputs.problems`, which the page shows. Every field of a decision but its run id,
kind and `evidence.now` is optional, so older and newer decision records both render.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml.audit import read_records
from ml.lake import Lake
from ml.lake.layout import decisions_prefix, drift_report_prefix, is_drift_report_key, is_manifest_key, \
    partition_hour, raw_prefix


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
    return DecisionPoint(
        run_id=record["run_id"], at=at, kind=record["kind"], reason=str(record.get("reason") or ""),
        retrain=record.get("retrain") is True, suppressed_by=record.get("suppressed_by") or None,
        live_auc=_num(live.get("roc_auc")) if "roc_auc" in live else _num(evidence.get("live_auc")),
        judged=live.get("judged") if isinstance(live.get("judged"), bool) else None,
        mature_labels=int(m) if (m := _num(live.get("mature", evidence.get("mature_labels")))) is not None else None,
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
    )


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


def read_serving(lake: Lake, model_name: str, since: datetime | None,
                 problems: list[str]) -> dict[datetime, dict[str, int]]:
    """Events per hour start per model version, from the hours a manifest lists (others are not
    offloaded yet); only the version columns are read."""
    counts: dict[datetime, dict[str, int]] = {}
    for key in lake.list(raw_prefix("predictions")):
        if not is_manifest_key(key):
            continue
        try:
            manifest = json.loads(lake.read_text(key))
            hour = parse_time(_dict(manifest, "window").get("start")) or partition_hour(key)
            if since is not None and hour + timedelta(hours=1) <= since:
                continue
            per_version: dict[str, int] = {}
            for entry in manifest.get("files") or []:
                for version, n in _version_counts(lake, entry["key"], model_name).items():
                    per_version[version] = per_version.get(version, 0) + n
        except (ValueError, KeyError, TypeError, OSError) as exc:
            problems.append(f"{key}: hour left out, {exc}")
            continue
        counts[hour] = per_version
    return dict(sorted(counts.items()))


def _version_counts(lake: Lake, key: str, model_name: str) -> dict[str, int]:
    source = pq.ParquetFile(io.BytesIO(lake.read_bytes(key)))
    names = source.schema_arrow.names
    table = source.read(columns=[c for c in ("model_name", "model_version") if c in names])
    if "model_version" not in names:
        raise ValueError(f"{key} has no model_version column")
    if "model_name" in names:
        table = table.filter(pc.fill_null(pc.equal(table["model_name"], model_name), True))
    out: dict[str, int] = {}
    for item in pc.value_counts(table["model_version"]).to_pylist():
        version = "unknown" if item["values"] is None else str(item["values"])
        out[version] = out.get(version, 0) + item["counts"]
    return out


def latest_drift_report(lake: Lake, decisions: list[DecisionPoint]) -> str | None:
    """The key of the newest drift report: the latest decision's, else the newest in the lake."""
    for point in reversed(decisions):
        if point.report_key:
            return point.report_key
    reports = [k for k in lake.list(drift_report_prefix()) if is_drift_report_key(k)]
    return reports[-1] if reports else None


def read_loop(lake: Lake, model_name: str, since: datetime | None = None) -> LoopInputs:
    """Read what the loop left in the lake (at or after `since` when given)."""
    inputs = LoopInputs()
    inputs.decisions = read_decisions(lake, model_name, since, inputs.problems)
    inputs.audit = read_audit(lake, model_name, since, inputs.problems)
    inputs.serving = read_serving(lake, model_name, since, inputs.problems)
    inputs.drift_report = latest_drift_report(lake, inputs.decisions)
    return inputs
