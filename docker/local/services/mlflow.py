"""`mlflow server` with a SQLite store and proxied artifacts in the stack's folder, authentication on.

MLflow's basic-auth app refuses every anonymous request and every account anything it was not granted
(`default_permission = NO_PERMISSIONS`). Its admin password, its form key and the passwords of the
accounts by role (docker/mlflow/accounts.py: pipeline, approver, reader) are generated on the first
start into `.local/secrets/` and reach the server through its environment, never its command line; the
accounts are made (or their passwords set again) at every start. `credentials(role)` is what a service
the stack starts puts in its environment to talk to MLflow as that role.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from credentials import secret, write_private
from processes import LOCAL, ROOT, Service, StackError, http_ok, log, spawn, wait

MLFLOW_PORT = int(os.environ.get("CONTINUUM_LOCAL_MLFLOW_PORT", "5000"))
URL = f"http://127.0.0.1:{MLFLOW_PORT}"
sys.path.insert(0, str(ROOT / "docker" / "mlflow"))  # the accounts' one definition, shared with compose
from accounts import ADMIN, ROLES, AccountError, ensure_accounts  # noqa: E402


def ready() -> bool:
    return http_ok(f"{URL}/health")  # /health answers without a login


def credentials(role: str) -> dict[str, str]:
    """The environment MLflow's client reads to log in as the stack's `role` account."""
    return {"MLFLOW_TRACKING_USERNAME": role, "MLFLOW_TRACKING_PASSWORD": secret(f"mlflow-{role}")}


def auth_config(home: Path) -> Path:
    """The basic-auth app's settings (no password in it: the admin's comes from the environment)."""
    path = home / "basic_auth.ini"
    write_private(path, "[mlflow]\ndefault_permission = NO_PERMISSIONS\n"
                        f"database_uri = sqlite:///{home / 'basic_auth.db'}\nadmin_username = {ADMIN}\n"
                        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                        # a login checked once a minute, not at every request: each check is a
                        # deliberately slow password hash (tens of ms), and the pipeline makes thousands
                        "auth_cache_ttl_seconds = 60\n")
    return path


def start() -> None:
    home = LOCAL / "mlflow"
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)  # the account database holds password hashes
    env = {"MLFLOW_AUTH_CONFIG_PATH": str(auth_config(home)),
           "MLFLOW_AUTH_ADMIN_PASSWORD": secret("mlflow-admin"),  # used on the first start only
           "MLFLOW_FLASK_SERVER_SECRET_KEY": secret("mlflow-flask-key")}
    spawn("mlflow", [
        str(Path(sys.executable).with_name("mlflow")), "server", "--app-name", "basic-auth",
        "--host", "127.0.0.1", "--port", str(MLFLOW_PORT),
        "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
        "--artifacts-destination", str(home / "artifacts"), "--workers", "2",
    ], env=env)
    took = wait("mlflow", ready, 120)
    model = os.environ.get("CONTINUUM_MODEL_NAME") or "machine-failure"
    try:
        changes = ensure_accounts(URL, secret("mlflow-admin"), {r: secret(f"mlflow-{r}") for r in ROLES}, model)
    except AccountError as exc:
        raise StackError(f"{exc} ({home / 'basic_auth.db'}; the admin password is in "
                         f"{LOCAL / 'secrets' / 'mlflow-admin'})") from None
    log(f"mlflow ready on {URL} in {took:.1f}s, login required (accounts: {', '.join(ROLES)}; "
        f"passwords: `make status`){'; ' + '; '.join(changes) if changes else ''}")


SERVICE = Service(start, ready, URL)
