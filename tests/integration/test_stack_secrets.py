"""The embedded stack's secrets: generated on the first start (no default password), kept with mode 0600
under the stack's folder, shown by `status` only, and never in a process's argv, a log or the repository."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.stack_folder import STACK, stack_dir  # noqa: F401,F811  (a fixture)
from tooling.local_dir import LOCAL

ROOT = Path(__file__).resolve().parents[2]


def _argv_of_every_process() -> str:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            found.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:  # the process ended meanwhile
            continue
    return "\n".join(found)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.timeout(180)
def test_postgres_password_is_generated_private_and_shown_by_status_only(stack_dir):
    folder, env = stack_dir
    up = subprocess.run(STACK + ["up", "postgres"], env=env, capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stderr
    secret_file = folder / "secrets" / "postgres"
    password = secret_file.read_text().strip()
    assert len(password) >= 32, "a generated password, not a default"
    assert _mode(secret_file) == 0o600 and _mode(folder / "secrets") == 0o700
    assert password not in up.stdout + up.stderr
    assert password not in (folder / "logs" / "postgres.log").read_text(errors="replace")
    assert password not in _argv_of_every_process(), "a secret in some process's command line"
    status = subprocess.run(STACK + ["status"], env=env, capture_output=True, text=True, timeout=60)
    assert f"postgres = {password}" in status.stdout

    # a restart keeps the password (the database was set up with it)
    subprocess.run(STACK + ["down", "postgres"], env=env, capture_output=True, timeout=60, check=True)
    again = subprocess.run(STACK + ["up", "postgres"], env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert secret_file.read_text().strip() == password


def _in_stack(folder: Path, code: str) -> subprocess.CompletedProcess:
    """Run `code` with the stack's modules importable and `folder` as the stack's folder."""
    env = {**os.environ, "CONTINUUM_LOCAL_DIR": str(folder)}
    env.pop("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", None)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT / "docker" / "local", env=env,
                          capture_output=True, text=True, timeout=60)


def test_airflow_login_is_written_private_before_airflow_starts(tmp_path):
    """With every user already in its password file, Airflow's auth manager generates (and logs) nothing."""
    passwords = tmp_path / "airflow" / "simple_auth_manager_passwords.json.generated"
    proc = _in_stack(tmp_path, "import os; from services import airflow; airflow.prepare_login(); "
                               f"os.environ['AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE'] = '{passwords}'; "
                               "from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import "
                               "SimpleAuthManager; SimpleAuthManager().init()")
    assert proc.returncode == 0, proc.stderr
    assert _mode(passwords) == 0o600
    written = json.loads(passwords.read_text())
    assert list(written) == ["admin", "approver"], "the approver's login is made with the admin's"
    for user, password in written.items():
        assert password == (tmp_path / "secrets" / f"airflow-{user}").read_text().strip() and len(password) >= 32
        assert password not in proc.stdout + proc.stderr, "Airflow's auth manager printed a password"


def test_a_login_from_an_earlier_start_is_kept_and_made_private(tmp_path):
    (tmp_path / "airflow").mkdir()
    passwords = tmp_path / "airflow" / "simple_auth_manager_passwords.json.generated"
    passwords.write_text('{"admin": "chosen-earlier"}\n')
    passwords.chmod(0o644)
    (tmp_path / "postgres.password").write_text("earlier-db-password\n")
    proc = _in_stack(tmp_path, "from services import airflow, postgres; airflow.prepare_login(); "
                               "print(postgres.postgres_url())")
    assert proc.returncode == 0, proc.stderr
    kept = json.loads(passwords.read_text())
    assert kept["admin"] == "chosen-earlier" and list(kept) == ["admin", "approver"] and _mode(passwords) == 0o600
    # an earlier stack's database password moves to the secrets folder, unchanged
    assert ":earlier-db-password@" in proc.stdout
    assert not (tmp_path / "postgres.password").exists()
    assert _mode(tmp_path / "secrets" / "postgres") == 0o600


def test_the_running_stack_keeps_its_secrets_out_of_argv_and_the_repository():
    secrets = LOCAL / "secrets"
    values = [p.read_text().strip() for p in secrets.iterdir() if p.is_file()] if secrets.is_dir() else []
    if not values:
        pytest.fail("the running stack has no generated secrets: `make test` starts PostgreSQL, which makes one")
    argv = _argv_of_every_process()
    tracked = subprocess.run(["git", "grep", "-I", "-l", "-F"] + sum((["-e", v] for v in values), []),
                             cwd=ROOT, capture_output=True, text=True)
    assert all(v not in argv for v in values), "a secret in some process's command line"
    assert tracked.stdout == "", f"a secret in the repository: {tracked.stdout}"


def test_airflow_and_the_sidecar_log_in_to_mlflow_as_their_roles_with_generated_passwords(tmp_path):
    """Airflow's tasks as pipeline, the sidecar as reader, each with the password the stack generated
    (whatever login the caller's environment holds), through the environment; MLflow's auth settings
    refuse anything not granted and hold no password."""
    proc = _in_stack(tmp_path, "import json, os; os.environ['MLFLOW_TRACKING_USERNAME'] = 'someone-else'; "
                               "os.environ['AIRFLOW__DATABASE__SQL_ALCHEMY_CONN'] = 'postgresql://db'; "
                               "from services import airflow, mlflow; env = airflow.airflow_env(); "
                               "print(json.dumps([env['MLFLOW_TRACKING_USERNAME'], env['MLFLOW_TRACKING_PASSWORD'], "
                               "mlflow.credentials('reader'), str(mlflow.auth_config(mlflow.LOCAL / 'mlflow'))]))")
    assert proc.returncode == 0, proc.stderr
    user, password, reader, ini = json.loads(proc.stdout)
    assert user == "pipeline" and password == (tmp_path / "secrets" / "mlflow-pipeline").read_text().strip()
    assert reader == {"MLFLOW_TRACKING_USERNAME": "reader",
                      "MLFLOW_TRACKING_PASSWORD": (tmp_path / "secrets" / "mlflow-reader").read_text().strip()}
    assert len(password) >= 32 and password != reader["MLFLOW_TRACKING_PASSWORD"]
    assert _mode(tmp_path / "secrets" / "mlflow-pipeline") == 0o600
    settings = Path(ini).read_text()
    assert "default_permission = NO_PERMISSIONS" in settings and "password" not in settings
