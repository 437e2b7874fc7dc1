"""The `control` topic, read by every replica, and the sidecar's own alerts to on-call.

Control messages are keyed by model name. Promotions and rollbacks (written by promote_model and
rollback_model) are wake-up calls: the sidecar then reads the alias from the registry, which stays the
one source of truth, so a replayed or reordered message can never install the wrong version. Traffic
messages (see `ml.serving.routing`) set an A/B split. Each replica reads the whole topic from the
beginning with a group of its own, so it learns every message and rebuilds the current split on start.
A refused model pages on-call through the `alerts` topic in the shape of `ml.alerts.Alert`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from ml.kafka import alert_producer, control_reader

log = logging.getLogger(__name__)
CONTROL_TYPES = ("promotion", "rollback", "traffic")


def parse_control(raw: bytes | None, model: str) -> dict | None:
    """The message if it is a control message for `model`, else None (other models, junk)."""
    try:
        message = orjson.loads(raw or b"")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict) or message.get("model") != model or message.get("type") not in CONTROL_TYPES:
        return None
    return message


class ControlListener:
    """A daemon thread feeding this model's control messages to `on_message`, in topic order."""

    def __init__(self, bootstrap: str, topic: str, model: str, on_message: Callable[[dict], None]) -> None:
        self.bootstrap, self.topic, self.model, self.on_message = bootstrap, topic, model, on_message
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="control-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        consumer = Consumer({**control_reader(self.bootstrap), "logger": log})
        try:
            while not self._stop.is_set() and not self._assign(consumer):
                time.sleep(2)
            while not self._stop.is_set():
                msg = consumer.poll(0.5)
                if msg is None or msg.error() is not None:
                    continue
                message = parse_control(msg.value(), self.model)
                if message is not None:
                    log.info("control: %s", message)
                    self.on_message(message)
        finally:
            consumer.close()

    def _assign(self, consumer: Consumer) -> bool:
        try:
            meta = consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
        except KafkaException as exc:
            log.warning("control topic %s unavailable (%s); relying on alias polling", self.topic, exc)
            return False
        if meta is None or meta.error is not None or not meta.partitions:
            log.warning("control topic %s does not exist; relying on alias polling", self.topic)
            return False
        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in meta.partitions])
        return True


def alert_sender(bootstrap: str, topic: str, tracking_uri: str) -> Callable[[dict], None]:
    """A function that sends one on-call alert about a model (`ml.alerts.Alert`, kind model_refused) to the
    alerts topic. It has a producer of its own: waiting for that delivery must not serve the scoring
    loop's delivery callbacks from another thread."""
    from confluent_kafka import Producer

    from ml.alerts import MODEL_REFUSED, PAGE, WARN, Alert, produce_alert
    from ml.registry import CHAMPION, version_url

    producer = Producer({**alert_producer(bootstrap), "logger": log})

    def send(event: dict) -> None:
        name, version = event["model"], event["version"]
        serving = event.get("serving_version")
        alert = Alert(
            # a champion that cannot serve is a promotion that did not happen: a person is needed now
            kind=MODEL_REFUSED, subject=name, dedupe_key=f"{MODEL_REFUSED}:{name}:{version}",
            severity=PAGE if event["role"] == CHAMPION else WARN,
            title=f"serving refused {name} v{version} as {event['role']}",
            reason=f"{event['reason']}. Still serving {f'v{serving}' if serving else 'nothing'}.",
            evidence={**{k: str(v) for k, v in (event.get("evidence") or {}).items()},
                      "model_version": version_url(tracking_uri, name, version),
                      "version": str(version), "serving_version": str(serving or "")})
        try:
            produce_alert(producer, topic, alert)
        except Exception:  # the refusal is logged already; a lost alert must not stop the keeper
            log.exception("could not send the model_refused alert to %s", topic)
    return send
