"""The embedded stack's choice of Airflow executor (docker/local/services/executor.py): LocalExecutor by
default, the CeleryExecutor with `CONTINUUM_EXECUTOR=celery`, whose Redis and workers start and stop with
Airflow; a value the stack cannot run is refused with the variable's name and the choices."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from tests.unit.repo.compose_file import ROOT

STACK_DIR = ROOT / "docker" / "local"


@pytest.fixture
def stack_with(monkeypatch, tmp_path):
    """The stack's modules imported afresh under `CONTINUUM_EXECUTOR=value`, with a stack folder in tmp_path."""
    def load(value: str | None) -> SimpleNamespace:
        monkeypatch.setenv("CONTINUUM_LOCAL_DIR", str(tmp_path))
        if value is None:
            monkeypatch.delenv("CONTINUUM_EXECUTOR", raising=False)
        else:
            monkeypatch.setenv("CONTINUUM_EXECUTOR", value)
        monkeypatch.syspath_prepend(str(STACK_DIR))
        for name in [m for m in sys.modules if m in ("processes", "credentials", "services", "stack")
                     or m.startswith("services.")]:
            monkeypatch.delitem(sys.modules, name)
        return SimpleNamespace(processes=importlib.import_module("processes"),
                               **{n: importlib.import_module(f"services.{n}")
                                  for n in ("executor", "airflow", "redis", "postgres", "workers")})
    return load


def test_the_local_executor_is_the_default_and_needs_no_companions(stack_with):
    stack = stack_with(None)
    assert stack.executor.executor_env() == {"AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}
    assert stack.executor.with_companions(["postgres", "airflow", "serving"]) == ["postgres", "airflow", "serving"]
    assert stack.airflow._command()[1:] == ["standalone"]
    assert stack.redis.SERVICE.optional and stack.workers.SERVICE.optional


def test_celery_brings_redis_before_airflow_and_the_workers_after_it(stack_with, tmp_path):
    stack = stack_with("celery")
    assert stack.executor.with_companions(["postgres", "airflow", "serving"]) == \
        ["postgres", "redis", "airflow", "workers", "serving"]
    assert stack.executor.with_companions(["redis", "airflow"]) == ["redis", "airflow", "workers"], "each once"
    assert not stack.redis.SERVICE.optional and not stack.workers.SERVICE.optional
    stack.postgres.secret("postgres")  # as the database's first start makes it
    env = stack.executor.executor_env()
    redis_password = (tmp_path / "secrets" / "redis").read_text()
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == f"redis://:{redis_password}@127.0.0.1:6379/0"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + stack.postgres.postgres_url(), "with its psycopg2 driver"
    script = stack.airflow._command()[-1]
    assert script.index("db migrate") < min(script.index(c) for c in ("scheduler &", "dag-processor &",
                                                                        "triggerer --skip-serve-logs &", "api-server &"))
    assert "standalone" not in script, "standalone would force the LocalExecutor"


def test_an_executor_the_stack_cannot_run_is_refused_by_name(stack_with):
    for value in ("Celery Executor", "kubernetes"):
        stack = stack_with(value)
        with pytest.raises(stack.executor.StackError, match=f"CONTINUUM_EXECUTOR='{value}' is not an executor of the "
                                                            "local stack: set it to local or celery"):
            stack.executor.with_companions(["airflow"])
    refused = subprocess.run([sys.executable, str(STACK_DIR / "stack.py"), "up", "airflow"], capture_output=True,
                             text=True, timeout=60, env={**os.environ, "CONTINUUM_EXECUTOR": "kubernetes"})
    assert refused.returncode == 1 and "CONTINUUM_EXECUTOR=" in refused.stderr, refused.stderr


def test_a_process_group_lives_until_its_last_member_has_ended(stack_with, tmp_path):
    """`stop` signals the whole group and waits for the pid the stack keeps: that pid, the shell, must
    outlive every component still shutting down, or a restart would meet a half-stopped Airflow."""
    stack = stack_with("celery")
    started, done = tmp_path / "started", tmp_path / "done"
    slow = f"sh -c 'trap \"sleep 0.5; touch {done}; exit 0\" TERM; touch {started}; while :; do sleep 0.05; done'"
    shell = subprocess.Popen(stack.processes.group_of([slow, "sleep 30"]), start_new_session=True)
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:  # until its trap is set
        time.sleep(0.02)
    os.killpg(shell.pid, signal.SIGTERM)
    assert started.exists() and shell.wait(timeout=60) == 0
    assert done.exists(), "the shell exited before the member that was still shutting down"
