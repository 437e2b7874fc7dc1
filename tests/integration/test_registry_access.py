"""Registry access on the running MLflow (authentication on): nobody anonymous, the reader and the
approver only read, the pipeline registers and sets `challenger`; the accounts are made idempotently,
and an account is given nothing it was not granted."""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ml.registry import champion
from ml.settings.login import PASSWORD, USERNAME, stack_secrets
from tests.integration.serving_models import register, train_booster

ACCOUNTS = Path(__file__).resolve().parents[2] / "docker" / "mlflow" / "accounts.py"  # not a package: load the file
_spec = importlib.util.spec_from_file_location("continuum_mlflow_accounts", ACCOUNTS)
accounts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(accounts)


def stored(name: str) -> str:
    path = stack_secrets() / name
    if not path.is_file():
        pytest.fail(f"no {path}: the tests need the local stack's MLflow, which makes its accounts on start "
                    "(`python docker/local/stack.py up mlflow`)")
    return path.read_text().strip()


def login(monkeypatch, user: str | None, password: str = "") -> None:
    """Every request from here on logs in as `user` (None: anonymous)."""
    if user is None:
        monkeypatch.delenv(USERNAME, raising=False)
        monkeypatch.delenv(PASSWORD, raising=False)
    else:
        monkeypatch.setenv(USERNAME, user)
        monkeypatch.setenv(PASSWORD, password)


@pytest.fixture(scope="module")
def model(mlflow_uri):
    """A registered model of the pipeline's with one version, as training makes it (one for the module:
    a refused write leaves it as it was, which each test checks)."""
    import mlflow

    with pytest.MonkeyPatch.context() as patch:
        login(patch, "pipeline", stored("mlflow-pipeline"))
        mlflow.set_tracking_uri(mlflow_uri)
        client, name = MlflowClient(mlflow_uri), f"test-access-{uuid.uuid4().hex[:8]}"
        client.create_registered_model(name)
        version = register(client, name, train_booster(rounds=2, events=500))
    return client, name, version


def new_version(client, name: str, version: str) -> str:
    """Register the version's logged model (its source, `models:/<model id>`) again, as training does."""
    known = client.get_model_version(name, version)
    return client.create_model_version(name, known.source, known.run_id,
                                       model_id=known.source.removeprefix("models:/")).version


WRITES = {
    "create a version": new_version,
    "set an alias": lambda c, name, v: c.set_registered_model_alias(name, "champion", v),
    "set a tag": lambda c, name, v: c.set_model_version_tag(name, v, "approval", "approved"),
}


@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("who, refusal", [(None, "UNAUTHENTICATED"), ("reader", "PERMISSION_DENIED"),
                                         ("approver", "PERMISSION_DENIED")])  # approvals are given in Airflow
def test_anonymous_reader_and_approver_are_refused_registry_writes(model, monkeypatch, write, who, refusal):
    client, name, version = model
    login(monkeypatch, "pipeline", stored("mlflow-pipeline"))
    versions = {v.version for v in client.search_model_versions(f"name = '{name}'")}
    login(monkeypatch, who, stored(f"mlflow-{who}") if who else "")
    with pytest.raises(MlflowException) as refused:
        WRITES[write](client, name, version)
    assert refused.value.error_code == refusal
    login(monkeypatch, "pipeline", stored("mlflow-pipeline"))  # the registry is as it was
    assert {v.version for v in client.search_model_versions(f"name = '{name}'")} == versions
    assert "champion" not in client.get_registered_model(name).aliases
    assert "approval" not in client.get_model_version(name, version).tags


def test_reader_reads_what_it_cannot_write(model, monkeypatch):
    client, name, version = model
    login(monkeypatch, "reader", stored("mlflow-reader"))
    assert client.get_model_version(name, version).version == version
    # MLflow denies an alias lookup on a model it cannot find: still "no champion" to a reader
    assert champion(client, f"{name}-never-registered") is None and champion(client, name) is None


def test_pipeline_registers_a_version_and_sets_challenger(model, monkeypatch):
    client, name, first = model
    login(monkeypatch, "pipeline", stored("mlflow-pipeline"))
    second = new_version(client, name, first)
    client.set_registered_model_alias(name, "challenger", second)
    assert client.get_model_version_by_alias(name, "challenger").version == second == str(int(first) + 1)


def test_accounts_are_made_once_and_an_account_gets_only_its_grants(mlflow_uri, model, monkeypatch):
    """A second run changes nothing the stack made; a new account (no role) reads nothing, not even a
    model name it can guess: the server's default is no permission."""
    client, name, version = model
    admin = stored("mlflow-admin")
    roles = {role: stored(f"mlflow-{role}") for role in accounts.ROLES}
    assert accounts.ensure_accounts(mlflow_uri, admin, roles, "machine-failure") == []
    stranger, password = f"test-nobody-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    try:
        assert accounts.ensure_accounts(mlflow_uri, admin, {stranger: password}, "machine-failure") == [
            f"account {stranger} created"]
        login(monkeypatch, stranger, password)
        with pytest.raises(MlflowException) as refused:
            client.get_model_version(name, version)
        assert refused.value.error_code == "PERMISSION_DENIED"
        with pytest.raises(MlflowException, match="403"):  # a denial is not taken for "no champion yet"
            champion(client, f"{name}-never-registered")
    finally:
        accounts._call(mlflow_uri, admin, "DELETE", "2.0/mlflow/users/delete", {"username": stranger})


def test_a_wrong_admin_password_names_the_fix(mlflow_uri):
    with pytest.raises(accounts.AccountError, match="refused its admin account's password.*restore"):
        accounts.ensure_accounts(mlflow_uri, "not-the-password", {"reader": "x"}, "machine-failure")
