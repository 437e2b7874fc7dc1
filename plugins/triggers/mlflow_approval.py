"""A trigger that watches one model version's `approval` tag in the MLflow registry from the triggerer."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any, AsyncIterator

from airflow.triggers.base import BaseTrigger, TriggerEvent

DECIDED = ("approved", "rejected")


class MlflowApprovalTrigger(BaseTrigger):
    """Fires once the version's approval tag is `approved` or `rejected`, or when `deadline` passes.

    The event payload is `{"status": "approved"|"rejected"|"timeout", "tags": {...}}`. The timeout is
    part of the trigger, so a timed-out wait is an event the sensor records, not a lost deferral."""

    def __init__(self, tracking_uri: str, model_name: str, version: str, deadline: str, poll_seconds: float = 30.0,
                 tag: str = "approval"):
        super().__init__()
        self.tracking_uri, self.model_name, self.version = tracking_uri, model_name, str(version)
        self.deadline, self.poll_seconds, self.tag = deadline, float(poll_seconds), tag

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}", {
            "tracking_uri": self.tracking_uri, "model_name": self.model_name, "version": self.version,
            "deadline": self.deadline, "poll_seconds": self.poll_seconds, "tag": self.tag,
        })

    def _tags(self) -> dict:
        from mlflow import MlflowClient

        return dict(MlflowClient(self.tracking_uri).get_model_version(self.model_name, self.version).tags)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = datetime.fromisoformat(self.deadline)
        while True:
            tags = await asyncio.to_thread(self._tags)
            if tags.get(self.tag) in DECIDED:
                yield TriggerEvent({"status": tags[self.tag], "tags": tags})
                return
            left = (deadline - datetime.now(timezone.utc)).total_seconds()
            if left <= 0:
                yield TriggerEvent({"status": "timeout", "tags": tags})
                return
            self.log.info("%s v%s: %s=%s, %.0f s left", self.model_name, self.version, self.tag,
                          tags.get(self.tag), left)
            await asyncio.sleep(min(self.poll_seconds, left))
