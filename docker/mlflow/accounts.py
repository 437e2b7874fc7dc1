"""The model registry's accounts by role, made idempotently through MLflow's basic-auth REST API as its
admin: the local stack runs this after MLflow starts, docker-compose's `mlflow-init` runs it as a one-shot.

    pipeline   trains, registers versions, tags them, sets `challenger`: EDIT on the configured model's
               name and on every experiment, READ on every registered model (so a model that is not
               registered yet is "not found", not "denied"); MLflow gives it MANAGE on one it creates
    approver   READ on every experiment and registered model: a person reading a version's evidence in
               the MLflow UI before approving it in Airflow (an approval is given there, not in MLflow)
    reader     READ on every experiment and registered model: the serving sidecar, dashboards

The server runs with `default_permission = NO_PERMISSIONS`, so an account reaches only what is granted
here. An account that exists gets its password set again (the stored secret is the truth). A grant on
`*` is set to the level above; a grant on a model's name that exists is left as it is, so the MANAGE
MLflow gives a model's creator is never lowered (such a grant goes when the model is deleted, and the
creator of the next one gets MANAGE on it). Standard library only, so the MLflow image runs it as it is:

    MLFLOW_TRACKING_URI=http://mlflow:5000 MLFLOW_AUTH_ADMIN_PASSWORD=... MLFLOW_PIPELINE_PASSWORD=... \\
    MLFLOW_APPROVER_PASSWORD=... MLFLOW_READER_PASSWORD=... CONTINUUM_MODEL_NAME=machine-failure \\
        python accounts.py
"""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

ADMIN = "admin"
ROLES = ("pipeline", "approver", "reader")


class AccountError(RuntimeError):
    """The registry's accounts could not be made; the message says why and what fixes it."""


def grants(model_name: str) -> dict[str, list[tuple[str, str, str]]]:
    """Each role's (resource type, resource id or `*`, permission)."""
    everything_read = [("experiment", "*", "READ"), ("registered_model", "*", "READ")]
    return {
        "pipeline": [("experiment", "*", "EDIT"), ("registered_model", "*", "READ"),
                     ("registered_model", model_name, "EDIT")],
        "approver": everything_read,  # no EDIT: any EDIT on a model could move its champion alias
        "reader": everything_read,
    }


def _call(url: str, admin_password: str, method: str, path: str, body: dict | None = None,
          query: dict | None = None) -> tuple[int, dict]:
    token = base64.b64encode(f"{ADMIN}:{admin_password}".encode()).decode()
    full = f"{url.rstrip('/')}/api/{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    request = urllib.request.Request(full, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            answer = json.loads(text)
        except ValueError:
            answer = {"message": text}
        if exc.code == 401:
            raise AccountError(f"MLflow at {url} refused its admin account's password: the admin was made with "
                               "another one (restore the stored admin password, or remove the auth database "
                               "to make the accounts anew)") from None
        return exc.code, answer


def ensure_accounts(url: str, admin_password: str, passwords: dict[str, str], model_name: str) -> list[str]:
    """Make every role's account with its password and grants; returns what changed, for the log."""
    changes = []
    for user, password in passwords.items():
        status, answer = _call(url, admin_password, "POST", "2.0/mlflow/users/create",
                               {"username": user, "password": password})
        if status == 200:
            changes.append(f"account {user} created")
        elif answer.get("error_code") == "RESOURCE_ALREADY_EXISTS":
            status, answer = _call(url, admin_password, "PATCH", "2.0/mlflow/users/update-password",
                                   {"username": user, "password": password})
        if status != 200:
            raise AccountError(f"MLflow at {url} did not make account {user}: {answer.get('message', answer)}")
        held = {(g["resource_type"], g["resource_pattern"]): g["permission"]
                for g in _call(url, admin_password, "GET", "3.0/mlflow/users/permissions/list",
                               query={"username": user})[1].get("permissions", [])}
        for resource_type, resource_id, permission in grants(model_name).get(user, []):
            now = held.get((resource_type, resource_id))
            if now == permission or (now is not None and resource_id != "*"):
                continue
            target = {"username": user, "resource_type": resource_type, "resource_id": resource_id}
            if now is not None:
                _call(url, admin_password, "POST", "3.0/mlflow/users/permissions/revoke", target)
            status, answer = _call(url, admin_password, "POST", "3.0/mlflow/users/permissions/grant",
                                   {**target, "permission": permission})
            if status != 200:
                raise AccountError(f"MLflow at {url} did not grant {user} {permission} on {resource_type} "
                                   f"{resource_id}: {answer.get('message', answer)}")
            changes.append(f"{user}: {permission} on {resource_type} {resource_id}"
                           + (f" (was {now})" if now else ""))
    return changes


def main() -> int:
    """The compose one-shot: every password from the environment, none with a default."""
    names = {"MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN, **{f"MLFLOW_{role.upper()}_PASSWORD": role for role in ROLES}}
    missing = [var for var in names if not os.environ.get(var)]
    if missing:
        print(f"accounts: set {', '.join(missing)} (no account has a default password)", file=sys.stderr)
        return 2
    passwords = {role: os.environ[f"MLFLOW_{role.upper()}_PASSWORD"] for role in ROLES}
    try:
        changes = ensure_accounts(os.environ.get("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000"),
                                  os.environ["MLFLOW_AUTH_ADMIN_PASSWORD"], passwords,
                                  os.environ.get("CONTINUUM_MODEL_NAME", "machine-failure"))
    except AccountError as exc:
        print(f"accounts: {exc}", file=sys.stderr)
        return 1
    print("accounts: " + ("; ".join(changes) if changes else "every account and grant already in place"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
