"""Shared test settings: the suite runs against the local defaults unless the environment says otherwise."""

import os

from ml.settings.login import use_stack_login
from tests.browser import page_in_browser  # noqa: F401  (one browser for the session's page checks)

# The S3 endpoint the tests use is moto's standalone server started by `make test`; any credentials do.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

# MLflow requires a login: the environment's, else the local stack's pipeline account (which owns the
# uniquely named models the tests register); subprocesses the tests start inherit it.
use_stack_login()

# DAG tests parse dags/ under the real Airflow, with a home of their own so the live one is untouched.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("AIRFLOW_HOME", os.path.join(_ROOT, ".local", "airflow-test"))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", os.path.join(_ROOT, "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", os.path.join(_ROOT, "plugins"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


def pytest_collection_modifyitems(config, items):
    """The end-to-end tests reset the stack's topics, lake and registered model: they run last, and the
    replay, which switches the stack to another contract (and may leave it to the test command to
    stop), after every other."""
    def order(item) -> tuple[bool, bool]:
        path = str(item.path).replace("\\", "/")
        return "/tests/e2e/" in path, path.endswith("/tests/e2e/test_replay.py")

    items.sort(key=order)
