"""Find registered versions by alias; the registry's names (aliases), its error, its pages in the MLflow UI.

A version's model is an MLflow XGBoost model stored as UBJ (XGBoost's own format, never a pickle), loaded
as data by `ml.registry.artifact` (`fetch_model`, `load_version`); its serving threshold, contract and
lineage are string tags on the version.
"""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
DEFAULT_THRESHOLD = 0.5
# what urllib3 says of a request that got no answer; MLflow's artifact download folds each file's failure
# into one message, without the exception it came from
NO_ANSWER = "Max retries exceeded"


class RegistryError(RuntimeError):
    """The registry does not hold what was asked for; the message names the model, version or alias."""


def unreachable(exc: BaseException) -> bool:
    """Whether a failure is that a service (the registry, its artifact store, the lake on S3) could not be
    reached or did not answer in time, rather than an answer about what was asked: such a failure passes,
    so what failed is asked again later instead of being judged on it. Looks along the exception's chain
    (MLflow and our own errors wrap the connection error they met)."""
    import requests
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    no_answer = (ConnectionError, TimeoutError, requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                 requests.exceptions.RetryError, BotoConnectionError, HTTPClientError)
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, no_answer) or isinstance(exc, MlflowException) and NO_ANSWER in exc.message:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version an alias points at, or None when the model or the alias does not exist. MLflow's
    auth app denies an alias lookup on a model it cannot find (whatever the account may read), so a
    denial is asked again as "is the model registered?": a denial that stands is raised, never taken
    for "no champion"."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        if exc.error_code == "PERMISSION_DENIED" and not registered(client, name):
            return None
        raise


def registered(client: MlflowClient, name: str) -> bool:
    """Whether a registered model of that name exists (a denial to read it is raised)."""
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    return True


def champion(client: MlflowClient, name: str) -> ModelVersion | None:
    """The version serving now (alias `champion`), or None before the first promotion."""
    return by_alias(client, name, CHAMPION)


def version_url(tracking_uri: str, name: str, version: str | int) -> str:
    """A registered version's page in the MLflow UI, for logs and on-call messages."""
    return f"{tracking_uri.rstrip('/')}/#/models/{name}/versions/{version}"


def model_url(tracking_uri: str, name: str) -> str:
    """A registered model's page in the MLflow UI: its versions and aliases."""
    return f"{tracking_uri.rstrip('/')}/#/models/{name}"


def run_url(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """A run's page in the MLflow UI: its params, metrics and artifacts."""
    return f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
