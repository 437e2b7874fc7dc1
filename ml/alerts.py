"""On-call alerts: what happened, why, and where the evidence is, in one shape for every channel.

An `Alert` renders itself as a JSON body (a generic webhook payload whose top-level `text` is what Slack
incoming webhooks and most incident tools show) and as a plain-text e-mail. `should_send` applies the
cooldown: an alert whose dedupe key went out less than `cooldown` ago is dropped, so a failure that
repeats every hour pages once. The state is a small JSON file replaced atomically under a file lock.
`write_alert_log` and `produce_alert` are the local stack's extra channels (a JSON-lines file and the
`alerts` topic). Delivery through Airflow connections lives in `plugins/notifiers/on_call.py`.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

TASK_FAILED, HOUR_INVALID, RETRAIN_DECISION = "task_failed", "hour_invalid", "retrain_decision"
APPROVAL_PENDING, PROMOTED, ROLLED_BACK, MODEL_REFUSED = "approval_pending", "promoted", "rolled_back", "model_refused"
STREAM_SILENT, STREAM_BACK = "stream_silent", "stream_back"
# Severity levels, each with one meaning on-call can rely on:
PAGE = "page"  # a person is needed now: something is broken or unsafe and will not recover by itself
WARN = "warn"  # look today: the loop carries on, but something needs a person's eyes
INFO = "info"  # for the record: the loop did what it is meant to do
LEVELS = {PAGE: "a person is needed now", WARN: "look today", INFO: "for the record"}
# How each level reads in the channels' own vocabularies: `event_severity` as PagerDuty's and Alertmanager's
# severities, `priority` as Opsgenie's, and the e-mail's X-Priority/Importance headers
CHANNEL_FIELDS = {
    PAGE: {"event_severity": "critical", "priority": "P1", "x_priority": "1", "importance": "high"},
    WARN: {"event_severity": "warning", "priority": "P3", "x_priority": "3", "importance": "normal"},
    INFO: {"event_severity": "info", "priority": "P5", "x_priority": "5", "importance": "low"},
}
DEFAULT_SEVERITY = {
    TASK_FAILED: PAGE, HOUR_INVALID: WARN, MODEL_REFUSED: WARN, ROLLED_BACK: WARN,
    APPROVAL_PENDING: WARN, RETRAIN_DECISION: INFO, PROMOTED: INFO, STREAM_SILENT: WARN, STREAM_BACK: INFO,
}
SOURCE = "continuum"
_STATE_TTL = timedelta(days=7)  # keys older than this are dropped from the state file


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Alert:
    """One thing on-call should know: its kind, a one-line title, the reason and links to the evidence.

    `subject` is what the alert is about (a device, a model, a DAG); it keys the Kafka record and, with
    the kind, makes the default `dedupe_key`. Pass a finer `dedupe_key` when distinct occurrences of the
    same kind and subject must each be sent (e.g. `hour_invalid:telemetry:2026-11-22T13`).
    """

    kind: str
    title: str
    reason: str
    evidence: dict[str, str] = field(default_factory=dict)
    severity: str = ""
    subject: str = ""
    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    dedupe_key: str = ""
    created_at: str = ""

    def __post_init__(self) -> None:
        self.severity = self.severity or DEFAULT_SEVERITY.get(self.kind, WARN)
        if self.severity not in LEVELS:
            raise ValueError(f"alert severity {self.severity!r}: use one of {', '.join(LEVELS)}")
        self.subject = self.subject or self.dag_id or SOURCE
        self.dedupe_key = self.dedupe_key or f"{self.kind}:{self.subject}"
        self.created_at = self.created_at or _now().isoformat(timespec="seconds")

    @property
    def headline(self) -> str:
        return f"[{self.severity.upper()}] {self.title}"

    def summary(self) -> str:
        """The readable text: headline, reason, where it ran and the evidence, one link a line."""
        ids = (("dag", self.dag_id), ("task", self.task_id), ("run", self.run_id))
        where = " / ".join(f"{name} {value}" for name, value in ids if value)
        lines = [self.headline, "", self.reason.strip()]
        if where:
            lines += ["", where]
        if self.evidence:
            lines += ["", "Evidence:", *(f"- {name}: {url}" for name, url in self.evidence.items())]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """The webhook body: Slack reads `text`; incident tools and scripts read the structured fields."""
        return {"text": self.summary(), "type": self.kind, "source": SOURCE, **CHANNEL_FIELDS[self.severity],
                "severity_meaning": LEVELS[self.severity], **asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "Alert":
        """Read back a body written by `to_dict` (log file, alerts topic, webhook)."""
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})

    def to_email(self) -> tuple[str, str]:
        """Subject and plain-text body of the alert e-mail."""
        return f"[continuum] {self.headline}", self.summary() + (
            f"\n\n{self.kind} at {self.created_at}; severity {self.severity}: {LEVELS[self.severity]}\n")

    def email_headers(self) -> dict[str, str]:
        """The e-mail's priority headers for the alert's level (mail clients sort and flag by them)."""
        fields = CHANNEL_FIELDS[self.severity]
        return {"X-Priority": fields["x_priority"], "Importance": fields["importance"]}


# --- cooldown ----------------------------------------------------------------------------------------

@contextmanager
def _locked_state(path: Path) -> Iterator[dict]:
    """The state file's content under an exclusive lock; changes to the dict are written back atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            state = json.loads(path.read_text()) if path.exists() else {}
        except ValueError:  # a damaged state file must never stop an alert
            state = {}
        before = dict(state)
        yield state
        if state != before:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            with os.fdopen(fd, "w") as f:
                json.dump(state, f, indent=1, sort_keys=True)
            os.replace(tmp, path)


def should_send(alert: Alert, state_path: str | Path, cooldown: timedelta, now: datetime | None = None) -> bool:
    """True (and the send is recorded) unless the same dedupe key was sent less than `cooldown` ago."""
    now = now or _now()
    with _locked_state(Path(state_path)) as state:
        for key in [k for k, at in state.items() if now - datetime.fromisoformat(at) > max(_STATE_TTL, cooldown)]:
            del state[key]
        last = state.get(alert.dedupe_key)
        if last is not None and now - datetime.fromisoformat(last) < cooldown:
            return False
        state[alert.dedupe_key] = now.isoformat()
        return True


def forget(alert: Alert, state_path: str | Path) -> None:
    """Drop the alert's last send, so the next occurrence goes out (used when no channel delivered it)."""
    with _locked_state(Path(state_path)) as state:
        state.pop(alert.dedupe_key, None)


# --- local channels ----------------------------------------------------------------------------------

def write_alert_log(alert: Alert, path: str | Path) -> None:
    """Append the alert as one JSON line (a single write, so concurrent writers never interleave)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(alert.to_json() + "\n")


def read_alert_log(path: str | Path) -> list[Alert]:
    """Every alert in a log file written by `write_alert_log`, oldest first."""
    path = Path(path)
    if not path.exists():
        return []
    return [Alert.from_dict(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def produce_alert(producer, topic: str, alert: Alert, timeout: float = 10.0) -> None:
    """Produce the alert to the alerts topic keyed by its subject, and wait until the broker has it."""
    errors: list = []
    producer.produce(topic, alert.to_json().encode(), alert.subject.encode(),
                     on_delivery=lambda err, _msg: errors.append(err) if err else None)
    if producer.flush(timeout) != 0:
        raise TimeoutError(f"alert not delivered to topic {topic} within {timeout:.0f}s")
    if errors:
        raise RuntimeError(f"alert not delivered to topic {topic}: {errors[0]}")
