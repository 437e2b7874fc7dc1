"""Find and load registered versions: by alias, and as the native XGBoost booster the sidecar scores with.

A version's model is an MLflow XGBoost model stored as UBJ (XGBoost's own format, never a pickle), read
as data by `ml.registry.artifact`; its serving threshold, contract and lineage are string tags on the version.
"""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
APPROVAL, PENDING, APPROVED, REJECTED = "approval", "pending", "approved", "rejected"
DEFAULT_THRESHOLD = 0.5


class RegistryError(RuntimeError):
    """The registry does not hold what was asked for; the message names the model, version or alias."""


def by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version an alias points at, or None when the model or the alias does not exist."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def champion(client: MlflowClient, name: str) -> ModelVersion | None:
    """The version serving now (alias `champion`), or None before the first promotion."""
    return by_alias(client, name, CHAMPION)


def load_version(tracking_uri: str, name: str, version: str | int):
    """(xgboost.Booster, serving threshold, version tags) of one registered version, through the one safe
    loader (`ml.registry.artifact.fetch_model`). It does not ask whether the version may serve: callers
    that serve or compare a model use `ml.registry.trust.load_trusted`."""
    from ml.registry.artifact import fetch_model

    model = fetch_model(tracking_uri, name, version)
    return model.booster, float(model.tags.get("threshold", DEFAULT_THRESHOLD)), model.tags


def version_url(tracking_uri: str, mv: ModelVersion) -> str:
    """The version's page in the MLflow UI, for logs and on-call messages."""
    return f"{tracking_uri.rstrip('/')}/#/models/{mv.name}/versions/{mv.version}"
