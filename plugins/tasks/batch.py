"""Airflow glue for batch_score: which days a run scores, whether the lake has settled for them, which
version it scores with, and the scoring of one day; each returns a small JSON-able value for XCom."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone

from ml.settings import load_settings

log = logging.getLogger(__name__)
MAX_DAYS = 366


def _utc(t: datetime) -> datetime:  # Airflow passes pendulum times; the library works on plain UTC datetimes
    return datetime.fromtimestamp(t.timestamp(), timezone.utc)


def _day(value, name: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"param {name}: {value!r} is not a date; use YYYY-MM-DD, e.g. 2026-11-21") from None


def plan_days(params: dict, interval_start: datetime | None, interval_end: datetime | None,
              run_after: datetime | None = None) -> list[str]:
    """The UTC days a run scores, as YYYY-MM-DD: params start..end (both included; one of them alone is
    one day), else the days of the data interval, else (a manual run without one) the last whole day
    before the run."""
    start, end = _day(params.get("start"), "start"), _day(params.get("end"), "end")
    if start or end:
        start, end = start or end, end or start
    elif interval_start is not None and interval_end is not None:
        start, end = _utc(interval_start).date(), (_utc(interval_end) - timedelta(microseconds=1)).date()
    else:
        start = end = _utc(run_after or datetime.now(timezone.utc)).date() - timedelta(days=1)
    if end < start:
        raise ValueError(f"params: end {end} is before start {start}; give start <= end")
    days = (end - start).days + 1
    if days > MAX_DAYS:
        raise ValueError(f"params: {start}..{end} is {days} days; score at most {MAX_DAYS} in one run "
                         "(split the range)")
    return [(start + timedelta(days=i)).isoformat() for i in range(days)]


def plan(params: dict, interval_start: datetime | None, interval_end: datetime | None,
         run_after: datetime | None = None) -> list[str]:
    """`plan_days` for a task: a range that makes no sense fails at once, without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        days = plan_days(params, interval_start, interval_end, run_after)
    except ValueError as exc:
        raise AirflowFailException(str(exc)) from None
    log.info("scoring %d day(s): %s .. %s", len(days), days[0], days[-1])
    return days


def settled(last_day: str, now: datetime | None = None) -> bool:
    """True once `last_day` has ended and CONTINUUM_BATCH_DELAY_MINUTES has passed (its last hours are offloaded)."""
    settings = load_settings()
    end = datetime.combine(date.fromisoformat(last_day) + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)
    return (now or datetime.now(timezone.utc)) >= end + timedelta(minutes=settings.batch_delay_minutes)


def resolve(ref: str | None, run_type: str) -> dict:
    """The version a run scores with, fixed once for all its days. A scheduled run whose alias does not
    exist yet (nothing promoted) is skipped; any other run asking for a missing model fails."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
    from mlflow import MlflowClient

    from ml.batch import BatchError, resolve_version
    from ml.lake import Lake
    from ml.registry import UnrecordedMove

    settings = load_settings()
    ref = str(ref or settings.batch_model).strip()
    try:
        version = resolve_version(MlflowClient(settings.mlflow_tracking_uri), settings.model_name, ref,
                                  Lake.from_settings(settings.lake))
    except BatchError as exc:
        if run_type == "scheduled" and not ref.isdigit():
            raise AirflowSkipException(f"nothing to score with: {exc}") from None
        raise AirflowFailException(str(exc)) from None
    except UnrecordedMove as exc:  # never skipped: a champion moved around promotion needs a person
        raise AirflowFailException(str(exc)) from None
    log.info("scoring with %s v%s (%s)", settings.model_name, version, ref)
    return {"model": settings.model_name, "version": version, "ref": ref}


def score(day: str, model: dict) -> dict:
    """Score one day with the resolved version and write its predictions and daily summary. A day without
    valid telemetry or a version that cannot serve fails the task without retries, saying what to do."""
    from airflow.sdk.exceptions import AirflowFailException

    from ml.batch import BatchError, batch_day, load_model
    from ml.contract import load_contract
    from ml.lake import Lake
    from ml.serving.model import ModelRefused

    settings = load_settings()
    contract = load_contract(settings.contract)
    try:
        lake = Lake.from_settings(settings.lake)
        loaded = load_model(settings.mlflow_tracking_uri, contract, model["model"], model["version"], lake)
        summary = batch_day(lake, contract, loaded, date.fromisoformat(day))
    except (BatchError, ModelRefused) as exc:
        raise AirflowFailException(str(exc)) from None
    metrics = summary["labels"]["metrics"] or {}
    log.info("%s: %d events, alert rate %s, label coverage %.3f; report %s", day, summary["events"],
             summary["alert_rate"], summary["labels"]["coverage"], summary["report"])
    return {"day": day, "version": model["version"], "events": summary["events"], "alert_rate": summary["alert_rate"],
            "label_coverage": summary["labels"]["coverage"], "roc_auc": metrics.get("roc_auc"),
            "predictions": summary["predictions"], "report": summary["report"]}
