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


def send_webhook(settings) -> Send:
    def send(alert: Alert, context: dict) -> None:
        from airflow.providers.http.notifications.http import HttpNotifier

        HttpNotifier(http_conn_id=settings.alert_webhook_conn_id, json=alert.to_dict(),
                     extra_options={"timeout": WEBHOOK_TIMEOUT_S}).notify(context)
    return send


def send_email(settings) -> Send:
    def send(alert: Alert, context: dict) -> None:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        subject, body = alert.to_email()
        SmtpNotifier(to=recipients(settings), from_email=settings.alert_email_from or None, subject=subject,
                     html_content=f"<pre>{html.escape(body)}</pre>", custom_headers=alert.email_headers(),
                     smtp_conn_id=settings.alert_smtp_conn_id).notify(context)
    return send


def send_topic(settings) -> Send:
    def send(alert: Alert, context: dict) -> None:
        from airflow.providers.apache.kafka.hooks.produce import KafkaProducerHook

        produce_alert(KafkaProducerHook(kafka_config_id=settings.kafka_conn_id).get_producer(),
                      settings.topic_alerts, alert)
    return send


def send_log(settings) -> Send:
    def send(alert: Alert, context: dict) -> None:
        write_alert_log(alert, settings.alert_log_path)
    return send


def recipients(settings) -> list[str]:
    return [address.strip() for address in settings.alert_email_to.split(",") if address.strip()]


def available(settings) -> list[tuple[str, Send]]:
    """The configured channels, by name; each one left out is logged with what would turn it on."""
    channels: list[tuple[str, Send]] = []
    if _has_connection(settings.alert_webhook_conn_id):
        channels.append(("webhook", send_webhook(settings)))
    else:
        log.info("alert webhook skipped: no connection %r (set AIRFLOW_CONN_%s)",
                 settings.alert_webhook_conn_id, settings.alert_webhook_conn_id.upper())
    if not recipients(settings):
        log.info("alert e-mail skipped: no recipients (set CONTINUUM_ALERT_EMAIL_TO)")
    elif not _has_connection(settings.alert_smtp_conn_id):
        log.info("alert e-mail skipped: no connection %r (set AIRFLOW_CONN_%s)",
                 settings.alert_smtp_conn_id, settings.alert_smtp_conn_id.upper())
    else:
        channels.append(("email", send_email(settings)))
    if settings.alert_to_topic:
        channels.append(("topic", send_topic(settings)))
    if settings.alert_log_path:
        channels.append(("log", send_log(settings)))
    return channels
