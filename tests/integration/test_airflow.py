"""The local Airflow parses the repo's DAGs with no import errors and guards its REST API with a token."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_URL = os.environ.get("CONTINUUM_TEST_AIRFLOW_URL", "http://127.0.0.1:8080")
PASSWORDS = ROOT / ".local" / "airflow" / "simple_auth_manager_passwords.json.generated"


@pytest.fixture(scope="session")
def airflow_token() -> str:
    try:
        requests.get(f"{AIRFLOW_URL}/api/v2/monitor/health", timeout=10).raise_for_status()
    except requests.RequestException as exc:
        pytest.fail(f"Airflow at {AIRFLOW_URL} is unreachable ({exc}); start it with `make up`")
    user, password = next(iter(json.loads(PASSWORDS.read_text()).items()))
    resp = requests.post(f"{AIRFLOW_URL}/auth/token", json={"username": user, "password": password}, timeout=10)
    resp.raise_for_status()
    return resp.json()["access_token"]


def test_rest_api_refuses_a_request_without_a_valid_token():
    assert requests.get(f"{AIRFLOW_URL}/api/v2/dags", timeout=10).status_code == 401
    bad = {"Authorization": "Bearer not-a-token"}
    assert requests.get(f"{AIRFLOW_URL}/api/v2/dags", headers=bad, timeout=10).status_code == 401


def test_the_running_airflow_parses_every_repo_dag(airflow_token):
    headers = {"Authorization": f"Bearer {airflow_token}"}
    expected = {p.stem for p in (ROOT / "dags").glob("*.py") if not p.name.startswith("_")}
    deadline, dag_ids = time.monotonic() + 120, set()
    while time.monotonic() < deadline:
        errors = requests.get(f"{AIRFLOW_URL}/api/v2/importErrors", headers=headers, timeout=10).json()
        assert errors["total_entries"] == 0, errors["import_errors"]
        dags = requests.get(f"{AIRFLOW_URL}/api/v2/dags", headers=headers, timeout=10).json()["dags"]
        dag_ids = {d["dag_id"] for d in dags}
        if expected <= dag_ids:
            break
        time.sleep(3)
    assert expected <= dag_ids, f"not parsed by the dag-processor: {expected - dag_ids}"
