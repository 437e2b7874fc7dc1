"""docker-compose.yaml's Airflow logins, checked as a file: every user's password comes from .env with
no default, is written private before Airflow starts, so Airflow generates and prints none, and the
one user who may approve a version is the approver named in CONTINUUM_APPROVERS."""

from __future__ import annotations

import importlib.util
import json
import re

from tests.unit.repo.compose_file import AIRFLOW, ROOT, env

REQUIRED = re.compile(r"^\$\{(\w+):\?[^}]+\}$")  # ${VAR:?message}: compose stops when VAR is unset

_spec = importlib.util.spec_from_file_location("compose_airflow_passwords", ROOT / "docker/airflow/passwords.py")
passwords = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(passwords)


def test_every_airflow_user_has_a_password_from_env_written_before_airflow_starts(services):
    variables = {name: env(services[name]) for name in AIRFLOW}
    users = passwords.users(variables["airflow-apiserver"]["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"])
    assert users == ["admin", "approver"]
    for name in AIRFLOW:  # every component reads the one file; no user's password is generated
        file = variables[name]["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
        assert file == "/opt/airflow/auth/passwords.json", name
        assert any(str(v).endswith(":/opt/airflow/auth") for v in services[name]["volumes"]), name
    init = services["airflow-init"]
    assert "passwords.py" in init["command"][-1] and init["command"][-1].endswith("airflow db migrate")
    for user in users:
        var = f"AIRFLOW_{user.upper()}_PASSWORD"
        assert REQUIRED.match(variables["airflow-init"][var]).group(1) == var
        assert all(var not in variables[name] for name in AIRFLOW[1:]), "only the one-shot holds the passwords"
    assert variables["airflow-scheduler"]["CONTINUUM_APPROVERS"] == "approver"


def test_the_passwords_file_is_written_private_and_refused_without_every_password(tmp_path, capsys):
    target = tmp_path / "auth" / "passwords.json"
    environ = {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,approver:user",
               "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(target), "AIRFLOW_ADMIN_PASSWORD": "a" * 32}
    assert passwords.main(environ) == 2 and not target.exists()
    assert "set AIRFLOW_APPROVER_PASSWORD" in capsys.readouterr().err
    assert passwords.main({**environ, "AIRFLOW_APPROVER_PASSWORD": "b" * 32}) == 0
    assert json.loads(target.read_text()) == {"admin": "a" * 32, "approver": "b" * 32}
    assert target.stat().st_mode & 0o777 == 0o600
    assert "a" * 32 not in capsys.readouterr().out, "no password printed"
