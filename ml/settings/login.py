"""The MLflow login of a tool run by hand against the embedded local stack.

MLflow's client logs in with `MLFLOW_TRACKING_USERNAME` and `MLFLOW_TRACKING_PASSWORD` from the
environment. The services the stack starts get them from the stack; docker-compose's from `.env`. The
tools a user runs in a checkout (`make test`, `continuum-loop`, the benchmarks) take the stack's
pipeline account from its secrets folder when those variables are not set, so the two commands of the
README work without exporting a password. Set variables always win: a tool pointed at another MLflow
is given that server's login.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

USERNAME, PASSWORD = "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"
ROOT = Path(__file__).resolve().parents[2]


def stack_folder(environ=os.environ) -> Path:
    """The embedded stack's folder: `CONTINUUM_LOCAL_DIR`, by default `.local` in the checkout (`make test`
    points it at `.local/test`, the suite's own stack)."""
    return Path(environ.get("CONTINUUM_LOCAL_DIR") or ROOT / ".local").resolve()


def stack_secrets(environ=os.environ) -> Path:
    """The embedded stack's secrets folder (`secrets/` in its folder)."""
    return stack_folder(environ) / "secrets"


def use_stack_login(account: str = "pipeline", environ=os.environ) -> str | None:
    """Put the stack's `account` login into `environ` unless a login is already there; returns the user
    now in `environ` (None: no login set and the stack has made none, so requests go anonymous and the
    server answers 401 naming what is missing). Call it once, at an entry point, before any request."""
    if environ.get(USERNAME):
        return environ[USERNAME]
    return account if _log_in(account, environ) else None


def _log_in(account: str, environ) -> bool:
    """Put the stack's stored password of `account` into `environ`; False when the stack has none."""
    stored = stack_secrets(environ) / f"mlflow-{account}"
    if not stored.is_file():
        return False
    environ[USERNAME], environ[PASSWORD] = account, stored.read_text().strip()
    return True


@contextlib.contextmanager
def stack_account(account: str, environ=os.environ):
    """Requests made inside the block log in as the stack's `account` (e.g. `admin` for the demo's
    destructive reset, which deletes a registered model whatever account created it); the login in
    `environ` before the block is put back after it. Without that account's secret the block keeps the
    login it has."""
    before = {k: environ.get(k) for k in (USERNAME, PASSWORD)}
    if not _log_in(account, environ):
        yield
        return
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                environ.pop(key, None)
            else:
                environ[key] = value
