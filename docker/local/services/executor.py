"""Which Airflow executor the embedded stack runs, chosen with `CONTINUUM_EXECUTOR`:

- `local` (the default): the LocalExecutor, tasks run beside the scheduler under `airflow standalone`;
- `celery`: the CeleryExecutor, as docker-compose runs it: Redis is the broker (services/redis.py), the
  metadata database holds the results, and two Celery workers run the tasks (services/workers.py).

With `celery` the executor's services go with Airflow: `up airflow` starts Redis before it and the
workers after it, `down airflow` stops them too.
"""

from __future__ import annotations

import os

from processes import StackError

EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}
CHOSEN = os.environ.get("CONTINUUM_EXECUTOR", "").strip().lower() or "local"
# the services that run with Airflow under each executor: (before it, after it)
COMPANIONS = {"local": ((), ()), "celery": (("redis",), ("workers",))}


def check() -> None:
    """Refuse an executor the stack cannot run, naming the variable and the choices."""
    if CHOSEN not in EXECUTORS:
        raise StackError(f"CONTINUUM_EXECUTOR={os.environ.get('CONTINUUM_EXECUTOR')!r} is not an executor of the "
                         f"local stack: set it to {' or '.join(EXECUTORS)} (the default is local)")


def celery() -> bool:
    return CHOSEN == "celery"


def with_companions(names: list[str]) -> list[str]:
    """`names` with the executor's services around Airflow's, each once, in start order."""
    check()
    before, after = COMPANIONS[CHOSEN]
    out: list[str] = []
    for name in names:
        for each in (*before, name, *after) if name == "airflow" else (name,):
            if each not in out:
                out.append(each)
    return out


def executor_env() -> dict[str, str]:
    """Airflow's executor settings: the executor, and for Celery the broker and the result backend."""
    from services import postgres, redis  # here: redis.py reads this module to know whether it is optional

    check()
    env = {"AIRFLOW__CORE__EXECUTOR": EXECUTORS[CHOSEN]}
    if celery():
        env["AIRFLOW__CELERY__BROKER_URL"] = redis.broker_url()
        # the driver named, as in the metadata database's URL: SQLAlchemy's default for postgresql:// is psycopg 3
        env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + postgres.postgres_url()
    return env
