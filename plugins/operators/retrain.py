"""Airflow glue for retrain_model: each function reads the settings once, builds its clients, calls one
`ml` function and returns a small JSON-able summary for XCom."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from ml.contract import load_contract
from ml.lake import Lake
from ml.settings import load_settings
from ml.train import RetrainRequest, plan_request, register_challenger, train_candidate

log = logging.getLogger(__name__)
HYPERPARAMETERS = ("max_depth", "learning_rate", "min_child_weight")


def trigger_reason(run_type: str, params: dict, asset_events: list[dict]) -> str:
    """Why this run retrains: the request's reason (asset), 'schedule' (cron) or the person's reason (manual)."""
    if asset_events:
        reasons = sorted({str(e.get("reason") or e.get("decision") or "request") for e in asset_events})
        return "request:" + "+".join(reasons)
    if run_type == "scheduled":
        return "schedule"
    return f"manual:{params.get('reason') or 'unspecified'}"


def plan(run_type: str, params: dict, asset_events: list[dict]) -> dict:
    """The retraining request of this run: trigger, window, hyperparameters a person fixed."""
    settings = load_settings()
    request = plan_request(trigger_reason(run_type, params, asset_events),
                           float(params.get("window_days") or settings.retrain_window_days), datetime.now(timezone.utc),
                           {k: params.get(k) for k in HYPERPARAMETERS}, params.get("search_seconds"))
    log.info("retrain request: %s", request.to_dict())
    return request.to_dict()


def train(request: dict) -> dict:
    """Train and evaluate a candidate against the champion on a shared holdout; log the MLflow run.
    Too little data fails the task without retries, with what is missing."""
    from airflow.sdk.exceptions import AirflowFailException

    from ml.train import DatasetError

    settings = load_settings()
    try:
        summary = train_candidate(Lake.from_settings(settings), load_contract(settings.contract), settings,
                                  RetrainRequest.from_dict(request))
    except DatasetError as exc:
        raise AirflowFailException(f"not retraining: {exc}") from None
    log.info("run %s/#/experiments/%s/runs/%s", settings.mlflow_tracking_uri, summary["experiment_id"],
             summary["run_id"])
    return summary


def register(summary: dict) -> dict:
    """Register the candidate as a version with its tags and point `challenger` at it."""
    settings = load_settings()
    version = register_challenger(settings.mlflow_tracking_uri, settings.model_name, summary, summary["tags"])
    url = f"{settings.mlflow_tracking_uri}/#/models/{settings.model_name}/versions/{version}"
    log.info("registered %s v%s as challenger: %s", settings.model_name, version, url)
    return {"model": settings.model_name, "version": version, "run_id": summary["run_id"], "url": url,
            "trigger": summary["request"]["trigger"], "metrics": summary["metrics"]}
