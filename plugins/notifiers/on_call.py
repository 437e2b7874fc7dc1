"""Alerts to on-call: one call applies the cooldown once, then fans out to every configured channel.

    from ml.alerts import Alert, PROMOTED
    from plugins.notifiers.on_call import notify_on_call

    notify_on_call(Alert(PROMOTED, title="machine-failure v7 is champion", reason="...",
                         evidence={"mlflow run": url}, subject="machine-failure",
                         dedupe_key="promoted:machine-failure:7"))

Inside a task the alert is stamped with the DAG, run and task and a link to the task's log. A channel
that is not configured is skipped with a log line; one that fails is logged and the others still go
out. `on_failure_notifier` is the `on_failure_callback` every DAG sets in its `default_args`.
"""

from __future__ import annotations

import copy
import logging

from airflow.sdk import BaseNotifier
from airflow.sdk.exceptions import AirflowFailException

from ml.alerts import TASK_FAILED, Alert, forget, should_send
from ml.settings import AlertSettings, load_settings
from plugins.notifiers.channels import available

log = logging.getLogger(__name__)
MAX_REASON_CHARS = 4000
SENT, FAILED, SUPPRESSED = "sent", "failed", "suppressed"


def _current_context() -> dict:
    from airflow.sdk import get_current_context

    try:
        return dict(get_current_context())
    except RuntimeError:  # not inside a task: a CLI, a test, the sidecar's glue
        return {}


def stamp(alert: Alert, context: dict) -> Alert:
    """Fill the DAG, run and task ids and the task-log link from an Airflow context, where not set."""
    ti = context.get("ti")
    if ti is None:
        return alert
    alert.dag_id = alert.dag_id or ti.dag_id
    alert.run_id = alert.run_id or ti.run_id
    map_index = getattr(ti, "map_index", -1)
    mapped = map_index is not None and map_index >= 0
    alert.task_id = alert.task_id or (f"{ti.task_id}[{map_index}]" if mapped else ti.task_id)
    log_url = getattr(ti, "log_url", None)
    if log_url:
        alert.evidence.setdefault("task_log", log_url)
    return alert


def notify_on_call(alert: Alert, context: dict | None = None, alerts: AlertSettings | None = None) -> dict[str, str]:
    """Send one alert to every configured channel unless its dedupe key is in cooldown.

    Returns channel -> 'sent' | 'failed' | 'suppressed' (empty when no channel is configured). Never
    raises for a channel: an alert must not turn a decision or a failure into a different failure.
    `alerts`: the alerts section of the settings (read from the environment when not given).
    """
    alerts = alerts or load_settings().alerts
    stamp(alert, context if context is not None else _current_context())
    channels = available(alerts)
    if not channels:
        log.warning("alert %s not sent: no on-call channel is configured\n%s", alert.dedupe_key, alert.summary())
        return {}
    if not should_send(alert, alerts.state_path, alerts.cooldown):
        log.info("alert %s suppressed: sent less than %s ago", alert.dedupe_key, alerts.cooldown)
        return {name: SUPPRESSED for name, _ in channels}
    results = {}
    for name, send in channels:
        try:
            send(alert, context or {})
            results[name] = SENT
        except Exception:
            log.exception("alert %s: the %s channel failed; the other channels still go out", alert.dedupe_key, name)
            results[name] = FAILED
    if SENT not in results.values():
        forget(alert, alerts.state_path)  # nothing got out: the next occurrence must try again
    log.info("alert %s: %s", alert.dedupe_key, results)
    return results


class AlertedFailure(AirflowFailException):
    """A task failure (no retry) whose own, more specific alert has been sent already, such as an invalid
    hour's `hour_invalid`: the failure callback does not send a `task_failed` for it too."""


def task_failed_alert(context: dict) -> Alert:
    """A `task_failed` alert from a failure callback's context: the task, the exception and its log."""
    ti = context["ti"]
    error = context.get("exception")
    reason = f"{type(error).__name__}: {error}" if error is not None else "the task failed (no exception recorded)"
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[:MAX_REASON_CHARS] + "\n... (truncated; see the task log)"
    return stamp(Alert(TASK_FAILED, title=f"{ti.dag_id}.{ti.task_id} failed", reason=reason, subject=ti.dag_id,
                       dedupe_key=f"{TASK_FAILED}:{ti.dag_id}:{ti.task_id}"), context)


class OnCallNotifier(BaseNotifier):
    """An Airflow notifier that sends `alert` to on-call, or a `task_failed` alert built from the context.

    Use it in `on_failure_callback` (what `on_failure_notifier` is) or in any other task callback.
    """

    def __init__(self, alert: Alert | None = None, **kwargs):
        super().__init__(**kwargs)
        self.alert = alert

    def notify(self, context) -> None:
        if self.alert is None and isinstance(context.get("exception"), AlertedFailure):
            log.info("task_failed not sent: the failure's own alert went out (%s)", context["exception"])
            return
        alert = copy.deepcopy(self.alert) if self.alert else task_failed_alert(context)  # one instance, many tasks
        notify_on_call(alert, context=context)


on_failure_notifier = OnCallNotifier()
