"""Airflow on the stack's PostgreSQL, with the repository's DAGs and plugins, and the clean slate
`make demo` starts from (`reset`).

Under the LocalExecutor (the default) it runs as `airflow standalone`. Standalone always runs the
LocalExecutor, so under the CeleryExecutor (`CONTINUUM_EXECUTOR=celery`, services/executor.py) the same
components run as docker-compose runs them, one process each in one process group, after `airflow db
migrate`; the tasks then run on the Celery workers (services/workers.py)."""

from __future__ import annotations

import json
import os
import shlex
import sys
import urllib.request
from contextlib import closing
from pathlib import Path

from credentials import secret, write_private
from processes import LOCAL, LOGS, ROOT, Service, StackError, group_of, log, spawn, stop, wait
from services import executor, postgres, redis
from services.kafka import KAFKA_PORT
from services.mlflow import credentials

AIRFLOW_PORT = int(os.environ.get("CONTINUUM_LOCAL_AIRFLOW_PORT", "8080"))
# user:role; each password is generated (prepare_login). `approver` is the one user who may answer
# promote_model's approval request (CONTINUUM_APPROVERS' default); admin may not.
USERS = "admin:admin,approver:user"


def airflow_env() -> dict[str, str]:
    """Environment of the local Airflow: home, repo folders, PostgreSQL, connections from env vars, the
    MLflow login of its tasks."""
    home = LOCAL / "airflow"
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # the embedded stack exists to run the loop: its DAGs start unpaused (compose keeps Airflow's default)
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": USERS,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
                                                or postgres.postgres_url()),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(AIRFLOW_PORT),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{AIRFLOW_PORT}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{AIRFLOW_PORT}/execution/",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        "CONTINUUM_LAKE_URI": str(LOCAL / "lake"),
        # on-call alerts also go to a log file and the alerts topic here (webhook/e-mail need connections)
        "CONTINUUM_ALERT_LOG_PATH": str(LOGS / "alerts.jsonl"),
        "CONTINUUM_ALERT_STATE_PATH": str(LOCAL / "alerts" / "state.json"),
        "CONTINUUM_ALERT_TO_TOPIC": "true",
        "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps(
            {"conn_type": "kafka", "extra": {"bootstrap.servers": f"127.0.0.1:{KAFKA_PORT}"}}
        ),
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
    }
    env = {k: os.environ.get(k, v) for k, v in env.items()}
    env.update(executor.executor_env())  # CONTINUUM_EXECUTOR is the one switch
    # the tasks register versions and move aliases as the stack's pipeline account (its own, whatever the
    # caller's environment holds: this Airflow talks to this stack's MLflow)
    env.update(credentials("pipeline"))
    # standalone runs its components as `airflow ...` subprocesses: the venv's bin must come first
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return env


def ready() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{AIRFLOW_PORT}/api/v2/monitor/health", timeout=2) as resp:
            health = json.load(resp)
    except (OSError, ValueError):
        return False
    return all(health.get(c, {}).get("status") == "healthy" for c in ("metadatabase", "scheduler"))


PASSWORDS = LOCAL / "airflow" / "simple_auth_manager_passwords.json.generated"


def prepare_login() -> None:
    """Write the login's password file before Airflow starts, mode 0600, from the stack's generated
    secrets. Airflow's simple auth manager generates a missing user's password itself, but prints it to
    its log; with every configured user already in the file it prints nothing. Passwords an earlier
    start put there are kept (the file is only made private)."""
    configured = os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", USERS)
    users = [u.split(":")[0].strip() for u in configured.split(",") if u.strip()]
    known = json.loads(PASSWORDS.read_text() or "{}") if PASSWORDS.exists() else {}
    wanted = {user: known.get(user) or secret(f"airflow-{user}") for user in users}
    write_private(PASSWORDS, json.dumps({**known, **wanted}) + "\n")


def login() -> str:
    if not PASSWORDS.exists():
        return "(the login appears once Airflow has started)"
    users = json.loads(PASSWORDS.read_text())
    return ", ".join(f"{user} / {password}" for user, password in users.items())


def start() -> None:
    if not postgres.ready():
        raise StackError(f"airflow needs its database: PostgreSQL is not answering on "
                         f"127.0.0.1:{postgres.POSTGRES_PORT}; "
                         "start it first (`python docker/local/stack.py up postgres airflow`)")
    if executor.celery() and not redis.ready():
        raise StackError(f"the CeleryExecutor needs its broker: Redis is not answering on 127.0.0.1:{redis.REDIS_PORT}; "
                         "start it first (`python docker/local/stack.py up redis airflow`)")
    (LOCAL / "airflow").mkdir(parents=True, exist_ok=True)
    prepare_login()
    spawn("airflow", _command(), env=airflow_env())
    took = wait("airflow", ready, 240)
    log(f"airflow ready on http://127.0.0.1:{AIRFLOW_PORT} ({executor.EXECUTORS[executor.CHOSEN]}) in {took:.1f}s; "
        "its login: `make status`")


def _command() -> list[str]:
    """`airflow standalone`, or under Celery its components: the scheduler, the dag-processor, the
    triggerer and the API server, started once the database is migrated, in one process group. On one
    machine every component reads task logs from the same folder: the triggerer serves none."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    if not executor.celery():
        return [airflow, "standalone"]
    airflow = shlex.quote(airflow)
    components = ["scheduler", "dag-processor", "triggerer --skip-serve-logs", "api-server"]
    return group_of([f"{airflow} {c}" for c in components], first=f"{airflow} db migrate")


def reset() -> None:
    """Stop Airflow and empty its metadata database, so the next `up airflow` starts with no runs: the
    loop's runs of earlier plays (and their history) go; connections and the login stay (they come
    from the environment and the password file). A database without DAG runs is left as it is. Runs
    are not deleted one by one through the API: that races the scheduler, which holds them."""
    if not postgres.ready():
        raise StackError(f"PostgreSQL is not answering on 127.0.0.1:{postgres.POSTGRES_PORT}: "
                         "start it first (`python docker/local/stack.py up postgres`)")
    import psycopg2

    database = postgres.AIRFLOW_DB
    try:
        with closing(postgres.connect(database)) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM dag_run")
            runs = cur.fetchone()[0]
    except psycopg2.Error:  # no tables yet, or no database: start over
        runs = None
    if runs == 0:
        return
    stop("workers")  # under Celery: they run the old database's tasks
    stop("airflow")
    with closing(postgres.connect()) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {database}")
    log(f"airflow stopped, its metadata database emptied ({'unreadable' if runs is None else f'{runs} DAG runs'})")


SERVICE = Service(start, ready, f"http://127.0.0.1:{AIRFLOW_PORT}")
