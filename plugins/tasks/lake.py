"""Airflow glue for the lake: each function reads the settings once, builds its clients through the
Airflow connections, calls one `ml` function and returns a small JSON-able summary for XCom. A validated
hour is handed to monitor_model as an `ml.validation.handover.ValidatedHour`, as a dict."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from ml.contract import load_contract
from ml.lake import Lake
from ml.lake.layout import manifest_key
from ml.lake.window import Window
from ml.offload import offload_hour
from ml.runtime import offload_tuning
from ml.validation.handover import ValidatedHour
from ml.settings import AlertSettings, load_settings
from plugins.hooks.kafka_window import KafkaWindowReaderHook

log = logging.getLogger(__name__)


def hour_of(data_interval_start: datetime, data_interval_end: datetime) -> Window:
    """The lake hour of a DAG run; an interval that is not exactly one whole hour is refused."""
    def utc(t: datetime) -> datetime:  # Airflow passes pendulum times; the lake works on plain UTC datetimes
        return datetime.fromtimestamp(t.timestamp(), timezone.utc)

    window = Window(utc(data_interval_start), utc(data_interval_end))
    if window.hours() != [window]:
        raise ValueError(f"lake_offload works on whole hours; got the interval {window.start} .. {window.end}")
    return window


def lateness_passed(data_interval_end: datetime, now: datetime | None = None) -> bool:
    """True once the hour has closed and the allowed lateness has passed too."""
    settings = load_settings()
    return (now or datetime.now(timezone.utc)) >= data_interval_end + settings.offload.lateness


def offload(kind: str, window: Window) -> dict:
    """Offload one topic's hour; returns where its manifest is and what it holds. The worker's process
    outlives the task, so the offload's process tuning is put back when it ends."""
    settings = load_settings()
    contract = load_contract(settings.contract)
    lake = Lake.from_settings(settings.lake)
    consumer = KafkaWindowReaderHook(settings.kafka_conn_id).get_conn
    try:
        manifest = offload_hour(consumer, lake, contract, kind, settings.kafka.topics[kind], window,
                                settings.offload.lateness, max_skew=settings.offload.max_event_skew,
                                tuning=offload_tuning)
    finally:
        consumer.close()
    return {
        "topic": kind, "hour": window.start.isoformat(), "rows": manifest["rows"],
        "quarantined": manifest["quarantined"], "quarantine_reasons": manifest["quarantine_reasons"],
        "manifest": lake.url(manifest_key(kind, window)),
    }


def validate(kind: str, window: Window) -> dict:
    """Validate one offloaded hour and return it as a `ValidatedHour` dict (the validated_telemetry
    Asset's extra); an invalid hour fails the task (red in the UI) with the reasons, and
    on-call hears of it once (`hour_invalid`, not also `task_failed`). An empty hour is green; a run of
    them, and the stream's return, are alerted once each (`silence_at`)."""
    from ml.validation import INVALID, silence_at, validate_hour
    from plugins.notifiers.on_call import AlertedFailure

    settings = load_settings()
    lake = Lake.from_settings(settings.lake)
    outcome = validate_hour(lake, load_contract(settings.contract), kind, window,
                            expectations_dir=settings.expectations_dir)
    log.info("validation of %s %s\n%s\nData Docs: %s", kind, window.partition_path, outcome.describe(),
             lake.url(outcome.docs_key) if outcome.docs_key else "none (no expectation was run)")
    silence = silence_at(lake, kind, window, settings.silence_hours)
    if silence is not None:
        from plugins.notifiers.on_call import notify_on_call

        notify_on_call(silence_alert(kind, silence, lake.url(manifest_key(kind, window))), alerts=settings.alerts)
    if outcome.status == INVALID:
        alert_invalid_hour(lake, kind, window, outcome, settings.alerts)
        raise AlertedFailure(f"{kind} {window.partition_path} is invalid and excluded from drift and "
                                   f"training.\n{outcome.describe()}\nData Docs: {lake.url(outcome.docs_key)}")
    return ValidatedHour.of(kind, window, outcome, lake.url(outcome.docs_key) if outcome.docs_key else None,
                            silence.change if silence else None).to_dict()


def alert_invalid_hour(lake: Lake, kind: str, window: Window, outcome, alerts: AlertSettings) -> None:
    """Tell on-call an hour is invalid: the validation summary, its Data Docs, manifest and result."""
    from ml.alerts import HOUR_INVALID, Alert
    from plugins.notifiers.on_call import notify_on_call

    hour = f"{window.start:%Y-%m-%dT%H}"
    notify_on_call(Alert(
        HOUR_INVALID, title=f"{kind} hour {hour}:00Z is invalid and excluded from drift and training",
        reason=outcome.describe(), subject=kind, dedupe_key=f"{HOUR_INVALID}:{kind}:{hour}",
        evidence={"data_docs": lake.url(outcome.docs_key), "manifest": lake.url(manifest_key(kind, window)),
                  "validation_result": lake.url(outcome.result_key)}), alerts=alerts)


def silence_alert(kind: str, silence, manifest_url: str):
    """The alert for a change in the stream's silence: 'silent since' (warn) once the run of empty hours
    reaches the limit, 'back' (info) when events arrive again; both keyed by the silence's first hour, so
    a retried or rerun hour sends it once."""
    from ml.alerts import STREAM_BACK, STREAM_SILENT, Alert
    from ml.validation.silence import SILENT

    since = f"{silence.since:%Y-%m-%dT%H}:00Z"
    if silence.change == SILENT:
        return Alert(STREAM_SILENT, title=f"{kind} stream silent since {since}",
                     reason=f"no {kind} events arrived in the {silence.hours} hours since {since}. The hours are "
                            "recorded as empty (not invalid); drift and training skip them. Check the machines' "
                            "producers and the broker.",
                     evidence={"manifest": manifest_url}, subject=kind, dedupe_key=f"{STREAM_SILENT}:{kind}:{since}")
    return Alert(STREAM_BACK, title=f"{kind} stream back after {silence.hours} silent hours since {since}",
                 reason=f"{kind} events arrive again after {silence.hours} empty hours.",
                 evidence={"manifest": manifest_url}, subject=kind, dedupe_key=f"{STREAM_BACK}:{kind}:{since}")
