"""The tools' view of where the local stack is, and the environment the loop's processes get."""

from __future__ import annotations

from tooling.local_dir import stack_defaults_env


def test_the_stack_defaults_drop_settings_but_keep_where_the_stack_is():
    given = {"PATH": "/bin", "AIRFLOW_HOME": "/x", "AIRFLOW__CORE__DAGS_FOLDER": "/d",
             "CONTINUUM_DRIFT_SHARE_THRESHOLD": "0.9", "CONTINUUM_MODEL_NAME": "mine",
             "CONTINUUM_LOCAL_DIR": "/repo/.local/test", "CONTINUUM_LOCAL_KAFKA_PORT": "19092",
             "CONTINUUM_LAKE_URI": "/repo/.local/test/lake", "CONTINUUM_ALERT_STATE_PATH": "/repo/.local/test/a.json",
             "CONTINUUM_EXECUTOR": "celery", "MLFLOW_TRACKING_USERNAME": "pipeline"}
    assert stack_defaults_env(given) == {
        "PATH": "/bin", "CONTINUUM_LOCAL_DIR": "/repo/.local/test", "CONTINUUM_LOCAL_KAFKA_PORT": "19092",
        "CONTINUUM_LAKE_URI": "/repo/.local/test/lake", "CONTINUUM_ALERT_STATE_PATH": "/repo/.local/test/a.json",
        "CONTINUUM_EXECUTOR": "celery", "MLFLOW_TRACKING_USERNAME": "pipeline"}
