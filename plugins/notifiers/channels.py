"""The on-call channels, each configured by an Airflow connection or a setting; `available` says which are set.

The webhook is the http provider's `HttpNotifier` (POST of the alert's JSON to the connection's host, a
full URL such as a Slack incoming webhook), e-mail is the smtp provider's `SmtpNotifier`; the alerts
topic goes through the Kafka provider's producer hook and the log file is a plain append. The
notifiers' `notify` is called directly: alert text is data, never a Jinja template.
"""

from __future__ import annotations

import html
import logging
from typing import Callable

from ml.alerts import Alert, produce_alert, write_alert_log
from ml.settings import AlertSettings

log = logging.getLogger(__name__)
WEBHOOK_TIMEOUT_S = 10
Send = Callable[[Alert, dict], None]


def _has_connection(conn_id: str) -> bool:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return False
    return True


def send_webhook(alerts: AlertSettings) -> Send:
    def send(alert: Alert, context: dict) -> None:
        from airflow.providers.http.notifications.http import HttpNotifier

        HttpNotifier(http_conn_id=alerts.webhook_conn_id, json=alert.to_dict(),
                     extra_options={"timeout": WEBHOOK_TIMEOUT_S}).notify(context)
    return send


def send_email(alerts: AlertSettings) -> Send:
    def send(alert: Alert, context: dict) -> None:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        subject, body = alert.to_email()
        SmtpNotifier(to=alerts.recipients, from_email=alerts.email_from or None, subject=subject,
                     html_content=f"<pre>{html.escape(body)}</pre>", custom_headers=alert.email_headers(),
                     smtp_conn_id=alerts.smtp_conn_id).notify(context)
    return send


def send_topic(alerts: AlertSettings) -> Send:
    def send(alert: Alert, context: dict) -> None:
        from airflow.providers.apache.kafka.hooks.produce import KafkaProducerHook

        produce_alert(KafkaProducerHook(kafka_config_id=alerts.kafka_conn_id).get_producer(),
                      alerts.topic, alert)
    return send


def send_log(alerts: AlertSettings) -> Send:
    def send(alert: Alert, context: dict) -> None:
        write_alert_log(alert, alerts.log_path)
    return send


def available(alerts: AlertSettings) -> list[tuple[str, Send]]:
    """The configured channels, by name; each one left out is logged with what would turn it on."""
    channels: list[tuple[str, Send]] = []
    if _has_connection(alerts.webhook_conn_id):
        channels.append(("webhook", send_webhook(alerts)))
    else:
        log.info("alert webhook skipped: no connection %r (set AIRFLOW_CONN_%s)",
                 alerts.webhook_conn_id, alerts.webhook_conn_id.upper())
    if not alerts.recipients:
        log.info("alert e-mail skipped: no recipients (set CONTINUUM_ALERT_EMAIL_TO)")
    elif not _has_connection(alerts.smtp_conn_id):
        log.info("alert e-mail skipped: no connection %r (set AIRFLOW_CONN_%s)",
                 alerts.smtp_conn_id, alerts.smtp_conn_id.upper())
    else:
        channels.append(("email", send_email(alerts)))
    if alerts.to_topic:
        channels.append(("topic", send_topic(alerts)))
    if alerts.log_path:
        channels.append(("log", send_log(alerts)))
    return channels
