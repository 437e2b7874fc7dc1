"""Real on-call endpoints for the alert tests: an HTTP server that records what is POSTed to it and an
SMTP server (aiosmtpd) that keeps every mail, both on 127.0.0.1 on free ports, plus the settings and
connections (`AIRFLOW_CONN_*`, `CONTINUUM_ALERT_*`) that point the notifiers at them."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebhookServer:
    """Records the JSON bodies POSTed to any path; answers 200."""

    def __init__(self):
        self.bodies: list[dict] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                received.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                 "json": json.loads(self.rfile.read(int(self.headers["Content-Length"])))})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class MailServer:
    """An aiosmtpd server that keeps every message it accepts, parsed."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages: list[email.message.EmailMessage] = []
        messages = self.messages

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def body(self, message) -> str:
        return "".join(part.get_content() for part in message.walk() if part.get_content_maintype() == "text")

    def close(self):
        self.controller.stop()


def wait_for(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not seen within {timeout:.0f}s")


@pytest.fixture
def webhook():
    server = WebhookServer()
    yield server
    server.close()


@pytest.fixture
def mail():
    server = MailServer()
    yield server
    server.close()


def use_webhook(monkeypatch, url: str) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ALERT_WEBHOOK", json.dumps({"conn_type": "http", "host": url}))


def use_mail(monkeypatch, server: MailServer, to: str = "oncall@continuum.test") -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": server.port,
        "extra": {"disable_tls": True, "disable_ssl": True, "timeout": 10, "retry_limit": 0,
                  "from_email": "continuum@continuum.test"}}))
    monkeypatch.setenv("CONTINUUM_ALERT_EMAIL_TO", to)
