"""Airflow glue for retrain_model: each function reads the settings once, builds its clients, calls one
`ml` function and returns a small JSON-able summary for XCom. The retrain_request Asset's events are
read as `RetrainAsk`s, the request passed between tasks is a `RetrainRequest` and the trained
candidate a `RetrainSummary`, each as a dict."""

from __future__ import annotations

import logging
from dataclasses import replace

from ml import clock
from ml.contract import load_contract
from ml.lake import Lake
from ml.monitor.handover import RetrainAsk
from ml.registry import run_url, version_url
from ml.settings import RegistrySettings, load_settings
from ml.train import RetrainRequest, RetrainSummary, plan_request, regime_request, register_challenger, train_candidate

log = logging.getLogger(__name__)
HYPERPARAMETERS = ("max_depth", "learning_rate", "min_child_weight")


def trigger_reason(run_type: str, params: dict, asks: list[RetrainAsk]) -> str:
    """Why this run retrains: the asks' reasons (asset), 'schedule' (cron) or the person's reason (manual)."""
    if asks:
        return "request:" + "+".join(sorted({ask.reason for ask in asks}))
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


def _skip_if_not_needed(registry: RegistrySettings, judged: tuple, scheduled: bool = False) -> None:
    """Skip a run started by retrain requests a new champion has answered, and a calendar run while
    there is no champion (the calendar refreshes a champion; the first model is a person's call)."""
    from airflow.sdk.exceptions import AirflowSkipException
    from mlflow import MlflowClient

    from ml.registry import champion

    if not judged and not scheduled:
        return
    current = champion(MlflowClient(registry.tracking_uri), registry.model_name)
    why = stale_requests(list(judged), current.version if current else None)
    if scheduled and current is None:
        why = (f"no champion of {registry.model_name} yet: the calendar retrain refreshes a champion; train the "
               f"first model by hand (Trigger retrain_model)")
    if why:
        log.info("not retraining: %s", why)
        raise AirflowSkipException(why)


def plan(run_type: str, params: dict, asset_events: list[dict]) -> dict:
    """The retraining request of this run (a `RetrainRequest`, as a dict): trigger, window, hyperparameters
    a person fixed, the champions the asks judged and, for a drift-triggered request, where the new
    regime began. `asset_events`: the retrain_request events' extras (`RetrainAsk`s). Skips the run when
    the asks are stale, or when it is a calendar run and there is no champion yet."""
    settings = load_settings()
    lake = Lake.from_settings(settings.lake)
    asks = [RetrainAsk.from_dict(e) for e in asset_events]
    judged = tuple(ask.champion for ask in asks)
    _skip_if_not_needed(settings.registry, judged, scheduled=run_type == "scheduled")
    request = plan_request(trigger_reason(run_type, params, asks),
                           float(params.get("window_days") or settings.retrain.window_days), clock.now(lake),
                           {k: params.get(k) for k in HYPERPARAMETERS}, params.get("search_seconds"))
    since = sorted(ask.regime_since for ask in asks if ask.regime_since)
    request = replace(request, judged=judged,
                      regime_since=since[0] if since and settings.retrain.regime_hours > 0 else None)
    log.info("retrain request: %s", request.to_dict())
    return request.to_dict()


def regime(request: dict):
    """Sensor body: the request once its data is there (a drift-triggered one waits for the new regime's
    hours with mature labels; others pass at once). Skips when a new champion answered the requests
    while it waited."""
    from airflow.sdk import PokeReturnValue

    settings = load_settings()
    asked = RetrainRequest.from_dict(request)
    _skip_if_not_needed(settings.registry, asked.judged)
    lake = Lake.from_settings(settings.lake)
    ready, status = regime_request(lake, load_contract(settings.contract), asked, settings.retrain.regime_hours,
                                   clock.now(lake))
    log.info("new regime: %s", status)
    return PokeReturnValue(is_done=ready is not None, xcom_value=ready.to_dict() if ready else None)


def train(request: dict) -> dict:
    """Train and evaluate a candidate against the champion on a shared holdout; log the MLflow run.
    Too little data fails the task without retries, with what is missing."""
    from airflow.sdk.exceptions import AirflowFailException

    from ml.train import DatasetError

    settings = load_settings()
    try:
        summary = train_candidate(Lake.from_settings(settings.lake), load_contract(settings.contract),
                                  settings.retrain, settings.registry, RetrainRequest.from_dict(request))
    except DatasetError as exc:
        raise AirflowFailException(f"not retraining: {exc}") from None
    log.info("run %s", run_url(settings.mlflow_tracking_uri, summary.experiment_id, summary.run_id))
    return summary.to_dict()


def register(summary: dict) -> dict:
    """Register the candidate of a `RetrainSummary` (as a dict) as a version with its tags and point
    `challenger` at it."""
    settings = load_settings()
    trained = RetrainSummary.from_dict(summary)
    version = register_challenger(settings.mlflow_tracking_uri, settings.model_name, trained.run, trained.tags)
    url = version_url(settings.mlflow_tracking_uri, settings.model_name, version)
    log.info("registered %s v%s as challenger: %s", settings.model_name, version, url)
    return {"model": settings.model_name, "version": version, "run_id": trained.run_id, "url": url,
            "trigger": trained.request.trigger, "metrics": trained.metrics}
