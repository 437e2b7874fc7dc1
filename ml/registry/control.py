"""The control message that tells every serving sidecar the champion moved.

Key: the model name. Value: JSON `{"type": "promotion"|"rollback", "model", "alias": "champion",
"version", "previous", "at", "reason"}`. One function takes any confluent-kafka style producer, so the
Airflow task (the provider's `kafka_default` connection) and plain scripts send the same bytes.
"""

from __future__ import annotations

import json


def control_message(record: dict) -> tuple[bytes, bytes]:
    """(key, value) of the control message announcing an audit record's alias move."""
    value = {"type": record["type"], "model": record["model"], "alias": record["alias"], "version": record["to"],
             "previous": record["from"], "at": record["at"], "reason": record["reason"]}
    return record["model"].encode(), json.dumps(value, sort_keys=True).encode()


def publish_control(producer, topic: str, record: dict, timeout: float = 30.0) -> dict:
    """Produce the control message for `record` and wait until the broker has it; returns the value sent."""
    key, value = control_message(record)
    errors: list = []
    producer.produce(topic, value=value, key=key, on_delivery=lambda err, _msg: err and errors.append(err))
    left = producer.flush(timeout)
    if left or errors:
        raise RuntimeError(f"control message to {topic!r} not delivered: {errors or f'{left} still queued'}")
    return json.loads(value)
