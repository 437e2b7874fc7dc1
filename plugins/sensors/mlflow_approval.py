"""Wait, deferred in the triggerer, for a person to approve or reject a model version in the MLflow UI."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import BaseSensorOperator

from plugins.triggers.mlflow_approval import MlflowApprovalTrigger


class MlflowApprovalSensor(BaseSensorOperator):
    """Succeeds when the version's `approval` tag reads `approved` or `rejected` (returning the decision);
    fails when nobody decides within `timeout_minutes`, after tagging the version rejected by timeout.

    The version comes from XCom or a param (templated). A decision already on the version (the policy
    approved it, or a gate rejected it) returns at once, without deferring. The decision is added to the
    version's verdict in the lake; approving a version whose gates failed fails the task."""

    template_fields = ("version",)

    def __init__(self, *, version: str, model_name: str | None = None, tracking_uri: str | None = None,
                 timeout_minutes: float | None = None, poll_seconds: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.version, self.model_name, self.tracking_uri = version, model_name, tracking_uri
        self.timeout_minutes, self.poll_seconds = timeout_minutes, poll_seconds

    def _resolve(self):
        """Fill what the DAG left out from the settings; returns them (the lake is built from them)."""
        from ml.settings import load_settings

        settings = load_settings()
        self.model_name = self.model_name or settings.model_name
        self.tracking_uri = self.tracking_uri or settings.mlflow_tracking_uri
        self.timeout_minutes = self.timeout_minutes or settings.gates.approval_timeout_minutes
        self.poll_seconds = self.poll_seconds or settings.gates.approval_poll_seconds
        return settings

    def execute(self, context) -> dict:
        from ml.registry.approval import read_decision

        settings = self._resolve()
        trigger = MlflowApprovalTrigger(
            self.tracking_uri, self.model_name, str(self.version), poll_seconds=self.poll_seconds,
            deadline=(datetime.now(timezone.utc) + timedelta(minutes=self.timeout_minutes)).isoformat())
        state, tags = read_decision(self.tracking_uri, self.model_name, str(self.version))
        if state is not None:
            return self._decision(state, tags, settings)
        self.log.info("waiting up to %g min for approval=approved|rejected on %s v%s (set the tag in the MLflow UI)",
                      self.timeout_minutes, self.model_name, self.version)
        self.defer(trigger=trigger, method_name="execute_complete")

    def execute_complete(self, context, event: dict[str, Any]) -> dict:
        settings = self._resolve()
        if event["status"] == "timeout":
            from airflow.sdk.exceptions import AirflowFailException
            from mlflow import MlflowClient

            from ml.lake import Lake
            from ml.registry.approval import expire

            expire(MlflowClient(self.tracking_uri), Lake.from_settings(settings.lake), self.model_name,
                   str(self.version), self.timeout_minutes)
            raise AirflowFailException(f"nobody approved or rejected {self.model_name} v{self.version} within "
                                       f"{self.timeout_minutes:g} minutes; it is tagged rejected (timeout)")
        return self._decision(event["status"], event["tags"], settings)

    def _decision(self, status: str, tags: dict, settings) -> dict:
        from ml.lake import Lake
        from ml.registry.approval import accept, decided_by

        # serving trusts the verdict in the lake, not the tags
        accept(Lake.from_settings(settings.lake), self.model_name, str(self.version), status, tags)
        who = decided_by(tags)
        self.log.info("%s v%s: %s by %s", self.model_name, self.version, status, who)
        return {"version": str(self.version), "approval": status, "by": who}
