"""docker-compose.yaml's CeleryExecutor, checked as a file, as Airflow's own compose file runs it: every
Airflow service queues to the Redis broker and records results in the metadata database, and the
workers can be scaled with `docker compose up --scale airflow-worker=N`."""

from __future__ import annotations

import re

from tests.unit.repo.compose_file import AIRFLOW, ROOT, env, ports

REQUIRED = re.compile(r"^\$\{(\w+):\?[^}]+\}$")  # ${VAR:?message}: compose stops when VAR is unset
BROKER = re.compile(r"^redis://:(?P<password>\$\{[^}]+\})@(?P<host>[\w-]+):(?P<port>\d+)/0$")


def test_every_airflow_service_runs_the_celery_executor_on_redis_and_postgres(services):
    redis_port = int(services["redis"]["expose"][0])
    for name in AIRFLOW:
        e = env(services[name])
        assert e["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        broker = BROKER.match(e["AIRFLOW__CELERY__BROKER_URL"])
        assert broker and (broker["host"], int(broker["port"])) == ("redis", redis_port), f"{name}: the broker"
        assert REQUIRED.match(broker["password"]).group(1) == "REDIS_PASSWORD", f"{name}: the broker's password"
        backend, metadata = e["AIRFLOW__CELERY__RESULT_BACKEND"], e["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert backend == "db+" + metadata, f"{name}: results go to the metadata database, through the same driver"


def test_the_broker_is_private_and_asks_for_its_password(services):
    redis = services["redis"]
    assert not ports(redis), "redis publishes no host port"
    assert REQUIRED.match(env(redis)["REDIS_PASSWORD"]).group(1) == "REDIS_PASSWORD"
    script = redis["command"][0]
    assert "requirepass" in script and "$$REDIS_PASSWORD" in script and "redis-server /tmp/redis.conf" in script
    assert "umask 077" in script, "the config holding the password is readable by its owner only"
    assert "$$REDIS_PASSWORD" in " ".join(redis["healthcheck"]["test"]), "the healthcheck logs in"
    for name in AIRFLOW[1:]:
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy", name


def test_workers_can_be_scaled_and_stop_warm(services):
    worker = services["airflow-worker"]
    assert worker["command"] == ["airflow", "celery", "worker"]
    assert "container_name" not in worker and not ports(worker), "a fixed name or host port stops --scale"
    assert "deploy" not in worker, "the replica count is --scale's"
    assert env(worker)["DUMB_INIT_SETSID"] == "0", "SIGTERM reaches Celery only: a warm shutdown"
    assert 'inspect ping -d "celery@$${HOSTNAME}"' in worker["healthcheck"]["test"][1]
    assert worker["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy", \
        "tasks report through the API server's execution API"


def test_the_airflow_image_installs_the_celery_provider():
    dockerfile = (ROOT / "docker/airflow/Dockerfile").read_text()
    assert '"/tmp/continuum[celery]"' in dockerfile
