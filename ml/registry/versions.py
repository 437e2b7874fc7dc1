"""Find and load registered versions: by alias, and as the native XGBoost booster the sidecar scores with.

A version's model is an MLflow XGBoost model stored as UBJ (XGBoost's own format, never a pickle);
its serving threshold, contract and lineage are string tags on the version.
"""

from __future__ import annotations

import tempfile

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
    """(xgboost.Booster, serving threshold, version tags) of one registered version, loaded from its UBJ file."""
    import mlflow.artifacts
    import mlflow.xgboost

    client = MlflowClient(tracking_uri)
    try:
        mv = client.get_model_version(name, str(version))
    except MlflowException as exc:
        raise RegistryError(f"model {name!r} has no version {version!r}: {exc.message}") from None
    with tempfile.TemporaryDirectory(prefix="continuum-model-") as tmp:
        # resolved through this client: a `models:/` URI would go to the process-wide registry instead
        source = client.get_model_version_download_uri(name, mv.version)
        local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=tmp, tracking_uri=tracking_uri)
        booster = mlflow.xgboost.load_model(local)
    tags = dict(mv.tags)
    return booster, float(tags.get("threshold", DEFAULT_THRESHOLD)), tags


def version_url(tracking_uri: str, mv: ModelVersion) -> str:
    """The version's page in the MLflow UI, for logs and on-call messages."""
    return f"{tracking_uri.rstrip('/')}/#/models/{mv.name}/versions/{mv.version}"
