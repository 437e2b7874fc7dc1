"""Airflow glue for retrain_model: each function reads the settings once, builds its clients, calls one
`ml` function and returns a small JSON-able summary for XCom."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from ml import clock
from ml.contract import load_contract
from ml.lake import Lake
from ml.registry import run_url, version_url
from ml.settings import load_settings
from ml.train import RetrainRequest, plan_request, regime_request, register_challenger, train_candidate

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


def stale_requests(judged: list, current: str | None) -> str | None:
    """Why a run started by retrain requests need not train: every request judged (`judged`: the
    champion version each one saw) a champion that has been replaced since, so a retrain has answered
    them. None when one still stands, and for runs no request started (`judged` empty)."""
    seen = set(judged)
    if not seen or None in seen or current in seen:
        return None
    return (f"the retrain requests judged v{', v'.join(sorted(str(v) for v in seen))}; the champion is now "
            f"v{current}, so a retrain has answered them (the monitor judges v{current} from here)")


def _skip_if_not_needed(settings, judged: list, scheduled: bool = False) -> None:
    """Skip a run started by retrain requests a new champion has answered, and a calendar run while
    there is no champion (the calendar refreshes a champion; the first model is a person's call)."""
    from airflow.sdk.exceptions import AirflowSkipException
    from mlflow import MlflowClient

    from ml.registry import champion

    if not judged and not scheduled:
        return
    current = champion(MlflowClient(settings.mlflow_tracking_uri), settings.model_name)
    why = stale_requests(judged, current.version if current else None)
    if scheduled and current is None:
        why = (f"no champion of {settings.model_name} yet: the calendar retrain refreshes a champion; train the "
               f"first model by hand (Trigger retrain_model)")
    if why:
        log.info("not retraining: %s", why)
        raise AirflowSkipException(why)


def plan(run_type: str, params: dict, asset_events: list[dict]) -> dict:
    """The retraining request of this run: trigger, window, hyperparameters a person fixed, and, for a
    drift-triggered request, where the new regime began. Skips the run when the requests are stale, or
    when it is a calendar run and there is no champion yet."""
    settings = load_settings()
    lake = Lake.from_settings(settings)
    judged = [e.get("champion") for e in asset_events]
    _skip_if_not_needed(settings, judged, scheduled=run_type == "scheduled")
    request = plan_request(trigger_reason(run_type, params, asset_events),
                           float(params.get("window_days") or settings.retrain_window_days), clock.now(lake),
                           {k: params.get(k) for k in HYPERPARAMETERS}, params.get("search_seconds"))
    since = sorted(str(e["regime_since"]) for e in asset_events if e.get("regime_since"))
    if since and settings.retrain_regime_hours > 0:
        request = replace(request, regime_since=datetime.fromisoformat(since[0]))
    log.info("retrain request: %s", request.to_dict())
    return {**request.to_dict(), "judged": judged}


def regime(request: dict):
    """Sensor body: the request once its data is there (a drift-triggered one waits for the new regime's
    hours with mature labels; others pass at once). Skips when a new champion answered the requests
    while it waited."""
    from airflow.sdk import PokeReturnValue

    settings = load_settings()
    _skip_if_not_needed(settings, request.get("judged") or [])
    lake = Lake.from_settings(settings)
    ready, status = regime_request(lake, load_contract(settings.contract), RetrainRequest.from_dict(request),
                                   settings.retrain_regime_hours, clock.now(lake))
    log.info("new regime: %s", status)
    return PokeReturnValue(is_done=ready is not None, xcom_value=ready.to_dict() if ready else None)


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
    log.info("run %s", run_url(settings.mlflow_tracking_uri, summary["experiment_id"], summary["run_id"]))
    return summary


def register(summary: dict) -> dict:
    """Register the candidate as a version with its tags and point `challenger` at it."""
    settings = load_settings()
    version = register_challenger(settings.mlflow_tracking_uri, settings.model_name, summary, summary["tags"])
    url = version_url(settings.mlflow_tracking_uri, settings.model_name, version)
    log.info("registered %s v%s as challenger: %s", settings.model_name, version, url)
    return {"model": settings.model_name, "version": version, "run_id": summary["run_id"], "url": url,
            "trigger": summary["request"]["trigger"], "metrics": summary["metrics"]}
