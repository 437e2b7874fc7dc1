"""Fixtures for the real local services that `make test` starts. A service that is down fails the
test that needs it, with the command that starts it; nothing is skipped."""

from __future__ import annotations

import json
import os
import urllib.request
import uuid
from pathlib import Path

import pytest
import requests

from ml.lake import Lake
from ml.settings import load_settings
from tests.integration.serving_process import STARTED
from tests.integration.training_data import training_lake  # noqa: F401  (a shared session fixture)
from tooling.local_dir import LOCAL

START_HINT = "start it with `make up` or `python docker/local/stack.py up {name}`"
S3_ENDPOINT = os.environ.get("CONTINUUM_TEST_S3_ENDPOINT", "http://127.0.0.1:9000")
S3_BUCKET = os.environ.get("CONTINUUM_TEST_S3_BUCKET", "continuum-lake")
# the running Airflow (the local stack's by default): its API, and its home for the CLI and the login
AIRFLOW_URL = os.environ.get("CONTINUUM_TEST_AIRFLOW_URL", "http://127.0.0.1:8080")
AIRFLOW_HOME = Path(os.environ.get("CONTINUUM_TEST_AIRFLOW_HOME", LOCAL / "airflow"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report carries the log of every sidecar it started (with the report and stacks
    each logged when the failing test stopped it)."""
    outcome = yield
    report = outcome.get_result()
    if call.when == "setup":
        STARTED.clear()
    elif call.when == "call" and report.failed:
        for n, sidecar in enumerate(STARTED):
            report.sections.append((f"sidecar {n} log ({sidecar.log_path})",
                                    sidecar.log_path.read_text(errors="replace")[-20_000:]))


@pytest.fixture(scope="session")
def settings():
    return load_settings()


@pytest.fixture(scope="session")
def kafka_bootstrap(settings) -> str:
    from confluent_kafka.admin import AdminClient

    try:
        AdminClient({"bootstrap.servers": settings.kafka_bootstrap}).list_topics(timeout=10)
    except Exception as exc:  # KafkaException on timeout
        pytest.fail(f"Kafka at {settings.kafka_bootstrap} is unreachable ({exc}); " + START_HINT.format(name="kafka"))
    return settings.kafka_bootstrap


def _require_http(url: str, name: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=10):
            pass
    except OSError as exc:
        pytest.fail(f"{name} at {url} is unreachable ({exc}); " + START_HINT.format(name=name))


@pytest.fixture(scope="session")
def mlflow_uri(settings) -> str:
    _require_http(f"{settings.mlflow_tracking_uri}/health", "mlflow")
    return settings.mlflow_tracking_uri


def airflow_login() -> tuple[str, str]:
    """The local Airflow's generated user and password."""
    passwords = AIRFLOW_HOME / "simple_auth_manager_passwords.json.generated"
    return next(iter(json.loads(passwords.read_text()).items()))


@pytest.fixture(scope="session")
def airflow_token() -> str:
    """A token for the running Airflow's REST API, obtained the way any client does (POST /auth/token)."""
    try:
        requests.get(f"{AIRFLOW_URL}/api/v2/monitor/health", timeout=10).raise_for_status()
    except requests.RequestException as exc:
        pytest.fail(f"Airflow at {AIRFLOW_URL} is unreachable ({exc}); " + START_HINT.format(name="airflow"))
    user, password = airflow_login()
    resp = requests.post(f"{AIRFLOW_URL}/auth/token", json={"username": user, "password": password}, timeout=10)
    resp.raise_for_status()
    return resp.json()["access_token"]


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    _require_http(f"{S3_ENDPOINT}/moto-api/", "s3")
    return S3_ENDPOINT


@pytest.fixture(params=["local", "s3"])
def lake(request, tmp_path) -> Lake:
    """An empty lake, once as a local folder and once under a fresh prefix on the S3 endpoint."""
    if request.param == "local":
        return Lake(str(tmp_path / "lake"))
    endpoint = request.getfixturevalue("s3_endpoint")
    return Lake(f"s3://{S3_BUCKET}/test-{uuid.uuid4().hex[:12]}", endpoint)


@pytest.fixture
def topic_factory(kafka_bootstrap):
    """Create uniquely named topics for one test and delete them afterwards."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    made: list[str] = []

    def make(base: str, partitions: int = 1) -> str:
        name = f"test.{base}.{uuid.uuid4().hex[:8]}"
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(30)
        made.append(name)
        return name

    yield make
    if made:
        for fut in admin.delete_topics(made).values():
            fut.result(30)
