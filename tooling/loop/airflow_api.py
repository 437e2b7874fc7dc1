"""Airflow 3's REST API as an upstream service uses it: a token, then DAG runs and backfills.

    api = AirflowApi("http://127.0.0.1:8080", "admin", password)
    run_id = api.trigger(RETRAIN_MODEL, {"reason": "first model", "window_days": 1})
    api.wait_runs(RETRAIN_MODEL, lambda runs: [r for r in runs if r["dag_run_id"] == run_id], 600, "training")
    backfill = api.backfill(LAKE_OFFLOAD, start, end)

(the DAG ids come from `plugins.dag_ids`)
"""

from __future__ import annotations

import time
from datetime import datetime
from urllib.parse import quote

import requests

DONE = {"success", "failed"}


class AirflowError(RuntimeError):
    """An Airflow call or a run failed; the message says which and where to look (`status`: the HTTP
    status of a refused REST call)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AirflowApi:
    def __init__(self, url: str, username: str, password: str, timeout_s: float = 30.0):
        self.url, self.timeout = url.rstrip("/"), timeout_s
        self.session = requests.Session()
        try:
            resp = self.session.post(f"{self.url}/auth/token", json={"username": username, "password": password},
                                     timeout=timeout_s)
        except requests.RequestException as exc:
            raise AirflowError(f"Airflow at {self.url} is unreachable ({exc}); start it with `make up`") from None
        if resp.status_code != 201 and resp.status_code != 200:
            raise AirflowError(f"Airflow refused the login of {username!r} ({resp.status_code}): {resp.text[:200]}")
        self.session.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"

    def _call(self, method: str, path: str, **kwargs) -> dict:
        resp = self.session.request(method, f"{self.url}/api/v2{path}", timeout=self.timeout, **kwargs)
        if resp.status_code >= 300:
            raise AirflowError(f"{method} /api/v2{path} -> {resp.status_code}: {resp.text[:400]}", resp.status_code)
        return resp.json() if resp.content else {}

    def run_url(self, dag_id: str, run_id: str) -> str:
        return f"{self.url}/dags/{dag_id}/runs/{quote(run_id, safe='')}"

    def wait_parsed(self, dag_ids: list[str], timeout_s: float = 360.0) -> None:
        """Until the dag-processor has parsed every DAG (none with an import error); unpauses them."""
        deadline = time.monotonic() + timeout_s
        while True:
            errors = self._call("GET", "/importErrors")["import_errors"]
            if errors:
                raise AirflowError("DAG import errors: " + "; ".join(f"{e['filename']}: {e['stack_trace'][-300:]}"
                                                                    for e in errors))
            known = {d["dag_id"]: d for d in self._call("GET", "/dags", params={"limit": 100})["dags"]}
            if all(d in known for d in dag_ids):
                for dag_id in dag_ids:
                    if known[dag_id]["is_paused"]:
                        self._call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
                return
            if time.monotonic() > deadline:
                missing = sorted(set(dag_ids) - set(known))
                raise AirflowError(f"Airflow has not parsed {missing} within {timeout_s:.0f} s")
            time.sleep(3)

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        """A manual run with `conf` (the DAG's params); returns its run id."""
        body = {"logical_date": None, "conf": conf or {}}
        return self._call("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def trigger_interval(self, dag_id: str, start: datetime, end: datetime, conf: dict | None = None) -> str:
        """A manual run for the data interval [start, end) (its logical date is `start`); returns its run id.
        Unlike a backfill it starts at once: Airflow runs one backfill of a DAG at a time."""
        body = {"logical_date": start.isoformat(), "data_interval_start": start.isoformat(),
                "data_interval_end": end.isoformat(), "conf": conf or {}}
        return self._call("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def backfill(self, dag_id: str, start: datetime, last: datetime, max_active_runs: int = 3) -> int:
        """Runs for every interval starting in [start, last] (Airflow's dates are logical dates, both
        included), rerunning those that already ran; returns its id. Airflow runs one backfill of a DAG at
        a time and marks one complete shortly after its last run ends: an earlier one is waited for."""
        body = {"dag_id": dag_id, "from_date": start.isoformat(), "to_date": last.isoformat(),
                "reprocess_behavior": "completed", "max_active_runs": max_active_runs}
        deadline = time.monotonic() + 120
        while self.unfinished_backfills(dag_id):
            if time.monotonic() > deadline:
                raise AirflowError(f"{dag_id} still has an unfinished backfill after 120 s; cancel it "
                                   "(Airflow UI, Backfills) or wait for it, then ask again")
            time.sleep(1)
        return self._call("POST", "/backfills", json=body)["id"]

    def unfinished_backfills(self, dag_id: str) -> list[dict]:
        found = self._call("GET", "/backfills", params={"dag_id": dag_id, "limit": 100})["backfills"]
        return [b for b in found if b.get("completed_at") is None]

    def cancel_backfills(self, dag_id: str) -> int:
        """Cancel the DAG's unfinished backfills (a fresh loop replaces them); returns how many."""
        unfinished = self.unfinished_backfills(dag_id)
        for b in unfinished:
            self._call("PUT", f"/backfills/{b['id']}/cancel")
        return len(unfinished)

    def covered_hours(self, dag_id: str, since: datetime) -> set[datetime]:
        """The logical dates (interval starts) of every run of the DAG since `since`."""
        out, offset = set(), 0
        while True:
            page = self._call("GET", f"/dags/{dag_id}/dagRuns", params={
                "limit": 100, "offset": offset, "logical_date_gte": since.isoformat()})["dag_runs"]
            out |= {datetime.fromisoformat(r["logical_date"].replace("Z", "+00:00"))
                    for r in page if r.get("logical_date")}
            if len(page) < 100:
                return out
            offset += 100

    def runs(self, dag_id: str, **params) -> list[dict]:
        params = {"limit": 100, "order_by": "-run_after", **params}
        return self._call("GET", f"/dags/{dag_id}/dagRuns", params=params)["dag_runs"]

    def wait_runs(self, dag_id: str, select, timeout_s: float, what: str, poll_s: float = 3.0,
                  **filters) -> list[dict]:
        """Until every run `select(runs)` picks (among the runs `filters` list) has finished; a failed
        one raises with its URL."""
        deadline = time.monotonic() + timeout_s
        while True:
            chosen = select(self.runs(dag_id, **filters))
            failed = [r for r in chosen if r["state"] == "failed"]
            if failed:
                raise AirflowError(f"{what}: {dag_id} run {failed[0]['dag_run_id']} failed; see "
                                   f"{self.run_url(dag_id, failed[0]['dag_run_id'])}")
            if chosen and all(r["state"] in DONE for r in chosen):
                return chosen
            if time.monotonic() > deadline:
                states = {r["dag_run_id"]: r["state"] for r in chosen}
                raise AirflowError(f"{what}: {dag_id} runs not finished within {timeout_s:.0f} s: {states}")
            time.sleep(poll_s)

    def failed_since(self, dag_ids: list[str], since: datetime,
                     run_types: tuple[str, ...] = ("manual", "asset_triggered", "backfill")) -> list[str]:
        """URLs of the runs of these DAGs (of these run types) that failed after `since`."""
        out = []
        for dag_id in dag_ids:
            for run in self.runs(dag_id, state="failed", start_date_gte=since.isoformat()):
                if run.get("run_type") in run_types:
                    out.append(self.run_url(dag_id, run["dag_run_id"]))
        return out

    def active(self, dag_ids: list[str]) -> list[tuple[str, str]]:
        """(dag id, run id) of every queued or running run of these DAGs."""
        return [(dag_id, run["dag_run_id"]) for dag_id in dag_ids for state in ("queued", "running")
                for run in self.runs(dag_id, state=state)]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value"):
        """The value a task of a run pushed under `key` (None when it has pushed nothing)."""
        try:
            found = self._call("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}"
                                      f"/xcomEntries/{key}")
        except AirflowError as exc:
            if exc.status == 404:
                return None
            raise
        return found.get("value")

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        """The state of one task of a run (None before the scheduler has made it)."""
        try:
            found = self._call("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}")
        except AirflowError as exc:
            if exc.status == 404:
                return None
            raise
        return found.get("state")
