"""Pipelines triggered as an upstream service triggers them, on the running Airflow: a token from
POST /auth/token, then POST /api/v2/dags/{dag_id}/dagRuns with the params as conf; the same through
`airflow dags trigger --conf`. A request without a valid token, or with params the DAG refuses, starts
nothing.

Both DAGs are paused while this module runs, so the runs it creates stay queued (run, they would train
or score on the stack's own lake and registry); they are deleted afterwards and each DAG's pause state
is put back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from tests.integration.conftest import AIRFLOW_HOME, AIRFLOW_URL

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# the params each DAG declares; the reason marks this module's runs
CONF = {
    "retrain_model": {"reason": f"upstream-test-{uuid.uuid4().hex[:8]}", "window_days": 2, "max_depth": 4},
    "batch_score": {"start": "2026-11-20", "end": "2026-11-21", "model": "champion"},
}
PARSE_WAIT_S = 330  # the dag-processor looks for new DAG files every 300 s


@pytest.fixture(scope="module")
def api(airflow_token) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {airflow_token}"
    return session


@pytest.fixture(scope="module")
def paused(api):
    """Wait until the running Airflow has parsed both DAGs, pause them, and restore their state at the end."""
    deadline, found = time.monotonic() + PARSE_WAIT_S, {}
    while time.monotonic() < deadline and len(found) < len(CONF):
        errors = api.get(f"{AIRFLOW_URL}/api/v2/importErrors", timeout=10).json()["import_errors"]
        broken = [e for e in errors if Path(e["filename"]).stem in CONF]
        assert not broken, ("the running Airflow cannot import a DAG (if ml/ changed since Airflow started, "
                            "restart it: its processes keep the modules plugins/ imported at start):\n"
                            + broken[0]["stack_trace"])
        found = {d: r.json()["is_paused"] for d in CONF
                 if (r := api.get(f"{AIRFLOW_URL}/api/v2/dags/{d}", timeout=10)).status_code == 200}
        time.sleep(0 if len(found) == len(CONF) else 5)
    assert found.keys() == CONF.keys(), f"not parsed by the running Airflow: {set(CONF) - set(found)}"
    try:
        for dag_id in CONF:
            api.patch(f"{AIRFLOW_URL}/api/v2/dags/{dag_id}", json={"is_paused": True}, timeout=10).raise_for_status()
        yield
    finally:
        for dag_id, was in found.items():
            api.patch(f"{AIRFLOW_URL}/api/v2/dags/{dag_id}", json={"is_paused": was}, timeout=10)


@pytest.fixture
def created(api):
    """Runs a test made, deleted through the API when it ends."""
    runs: list[tuple[str, str]] = []
    yield runs
    for dag_id, run_id in runs:
        api.delete(runs_url(dag_id, run_id), timeout=10)


def runs_url(dag_id: str, run_id: str = "") -> str:
    return f"{AIRFLOW_URL}/api/v2/dags/{dag_id}/dagRuns" + (f"/{quote(run_id, safe='')}" if run_id else "")


def run_count(api, dag_id: str) -> int:
    return api.get(runs_url(dag_id), params={"limit": 1}, timeout=10).json()["total_entries"]


@pytest.mark.parametrize("dag_id", list(CONF))
def test_a_token_and_a_post_start_a_run_with_the_params(api, paused, created, dag_id):
    body = {"logical_date": None, "conf": CONF[dag_id]}
    before = run_count(api, dag_id)
    assert requests.post(runs_url(dag_id), json=body, timeout=10).status_code == 401
    bad = requests.post(runs_url(dag_id), json=body, headers={"Authorization": "Bearer not-a-token"}, timeout=10)
    assert bad.status_code in (401, 403)
    assert run_count(api, dag_id) == before, "a refused request starts nothing"

    resp = api.post(runs_url(dag_id), json=body, timeout=10)
    assert resp.status_code == 200, resp.text
    run_id = resp.json()["dag_run_id"]
    created.append((dag_id, run_id))
    run = api.get(runs_url(dag_id, run_id), timeout=10).json()
    assert run["conf"] == CONF[dag_id]
    assert (run["run_type"], run["triggered_by"], run["state"]) == ("manual", "rest_api", "queued")
    assert run_count(api, dag_id) == before + 1


def test_params_the_dag_refuses_start_nothing(api, paused):
    before = run_count(api, "batch_score")
    for conf in ({"start": "21/11/2026"}, {"model": "not an alias"}):
        resp = api.post(runs_url("batch_score"), json={"logical_date": None, "conf": conf}, timeout=10)
        assert resp.status_code == 400 and next(iter(conf)) in resp.text, resp.text
    assert run_count(api, "batch_score") == before


def test_the_cli_starts_a_run_with_the_params(api, paused, created):
    sys.path.insert(0, str(ROOT / "docker" / "local"))
    from services.airflow import airflow_env

    env = {**os.environ, **airflow_env(), "AIRFLOW_HOME": str(AIRFLOW_HOME)}
    airflow = str(Path(sys.executable).with_name("airflow"))
    for dag_id, conf in CONF.items():
        before = run_count(api, dag_id)
        proc = subprocess.run([airflow, "dags", "trigger", dag_id, "--conf", json.dumps(conf), "--output", "json"],
                              env=env, capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr[-2000:]
        (printed,) = json.loads(proc.stdout.strip().splitlines()[-1])  # the last line; logs come before it
        created.append((dag_id, printed["dag_run_id"]))
        run = api.get(runs_url(dag_id, printed["dag_run_id"]), timeout=10).json()
        assert run["conf"] == conf and run["run_type"] == "manual" and run["state"] == "queued"
        assert run_count(api, dag_id) == before + 1
