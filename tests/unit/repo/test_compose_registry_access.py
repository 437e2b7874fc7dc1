"""docker-compose.yaml's MLflow, checked as a file: authentication on with no default password, its
accounts made before anything uses them, and each component logged in as its role."""

from __future__ import annotations

import configparser
import importlib.util
import re

import pytest

from tests.unit.repo.compose_file import AIRFLOW, ROOT, env

REQUIRED = re.compile(r"^\$\{(\w+):\?[^}]+\}$")  # ${VAR:?message}: compose stops when VAR is unset


def _accounts():
    spec = importlib.util.spec_from_file_location("compose_mlflow_accounts", ROOT / "docker/mlflow/accounts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mlflow_runs_basic_auth_with_no_anonymous_access_and_no_default_password(services):
    mlflow = services["mlflow"]
    assert mlflow["command"][mlflow["command"].index("--app-name") + 1] == "basic-auth"
    variables = env(mlflow)
    assert REQUIRED.match(variables["MLFLOW_AUTH_ADMIN_PASSWORD"]).group(1) == "MLFLOW_ADMIN_PASSWORD"
    assert REQUIRED.match(variables["MLFLOW_FLASK_SERVER_SECRET_KEY"])
    ini = configparser.ConfigParser()
    ini.read(ROOT / "docker/mlflow" / variables["MLFLOW_AUTH_CONFIG_PATH"].rsplit("/", 1)[-1])
    assert ini["mlflow"]["default_permission"] == "NO_PERMISSIONS"
    assert "admin_password" not in ini["mlflow"], "the admin's password comes from the environment only"
    # the auth database outlives the container
    assert any(str(v).split(":")[1] == ini["mlflow"]["database_uri"].removeprefix("sqlite:///").rsplit("/", 1)[0]
               for v in mlflow["volumes"])


def test_every_role_account_is_made_before_airflow_and_the_sidecar_start(services):
    init = services["mlflow-init"]
    assert init["command"][-1].endswith("accounts.py")
    for variable in (f"MLFLOW_{role.upper()}_PASSWORD" for role in _accounts().ROLES):
        assert REQUIRED.match(env(init)[variable]).group(1) == variable
    for name in [*AIRFLOW[1:], "serving"]:
        assert services[name]["depends_on"]["mlflow-init"]["condition"] == "service_completed_successfully", name


@pytest.mark.parametrize("service, role", [*((name, "pipeline") for name in AIRFLOW), ("serving", "reader")])
def test_each_component_logs_in_to_mlflow_as_its_role(services, service, role):
    variables = env(services[service])
    assert variables["MLFLOW_TRACKING_USERNAME"] == role
    assert REQUIRED.match(variables["MLFLOW_TRACKING_PASSWORD"]).group(1) == f"MLFLOW_{role.upper()}_PASSWORD"


def test_the_accounts_script_refuses_to_run_without_every_password(monkeypatch, capsys):
    accounts = _accounts()
    for role in accounts.ROLES:
        monkeypatch.setenv(f"MLFLOW_{role.upper()}_PASSWORD", "set")
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "")
    monkeypatch.delenv("MLFLOW_READER_PASSWORD")
    assert accounts.main() == 2
    assert "MLFLOW_AUTH_ADMIN_PASSWORD, MLFLOW_READER_PASSWORD" in capsys.readouterr().err
