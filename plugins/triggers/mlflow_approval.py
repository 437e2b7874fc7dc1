"""A trigger that watches one model version's approval in the MLflow registry from the triggerer."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any, AsyncIterator

from airflow.triggers.base import BaseTrigger, TriggerEvent


class MlflowApprovalTrigger(BaseTrigger):
    """Fires once the version's approval tag is `approved` or `rejected`, or when `deadline` passes.

    The event payload is `{"status": "approved"|"rejected"|"timeout", "tags": {...}}`. The timeout is
    part of the trigger, so a timed-out wait is an event the sensor records, not a lost deferral."""

    def __init__(self, tracking_uri: str, model_name: str, version: str, deadline: str, poll_seconds: float = 30.0):
        super().__init__()
        self.tracking_uri, self.model_name, self.version = tracking_uri, model_name, str(version)
        self.deadline, self.poll_seconds = deadline, float(poll_seconds)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}", {
            "tracking_uri": self.tracking_uri, "model_name": self.model_name, "version": self.version,
            "deadline": self.deadline, "poll_seconds": self.poll_seconds,
        })

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from ml.registry.approval import APPROVAL, read_decision

        deadline = datetime.fromisoformat(self.deadline)
        while True:
            state, tags = await asyncio.to_thread(read_decision, self.tracking_uri, self.model_name, self.version)
            if state is not None:
                yield TriggerEvent({"status": state, "tags": tags})
                return
            left = (deadline - datetime.now(timezone.utc)).total_seconds()
            if left <= 0:
                yield TriggerEvent({"status": "timeout", "tags": tags})
                return
            self.log.info("%s v%s: %s=%s, %.0f s left", self.model_name, self.version, APPROVAL,
                          tags.get(APPROVAL), left)
            await asyncio.sleep(min(self.poll_seconds, left))
