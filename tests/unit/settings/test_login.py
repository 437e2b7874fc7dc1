"""The MLflow login of hand-run tools: the environment's when set, else the local stack's pipeline account."""

from ml.settings.login import PASSWORD, USERNAME, use_stack_login


def _stack(tmp_path, **secrets) -> dict:
    (tmp_path / "secrets").mkdir()
    for name, value in secrets.items():
        (tmp_path / "secrets" / name).write_text(value + "\n")
    return {"CONTINUUM_LOCAL_DIR": str(tmp_path)}


def test_the_stacks_pipeline_account_is_used_when_no_login_is_set(tmp_path):
    environ = _stack(tmp_path, **{"mlflow-pipeline": "s3cret", "mlflow-reader": "other"})
    assert use_stack_login(environ=environ) == "pipeline"
    assert (environ[USERNAME], environ[PASSWORD]) == ("pipeline", "s3cret")


def test_a_login_in_the_environment_wins(tmp_path):
    environ = {**_stack(tmp_path, **{"mlflow-pipeline": "s3cret"}), USERNAME: "alice", PASSWORD: "hers"}
    assert use_stack_login(environ=environ) == "alice"
    assert (environ[USERNAME], environ[PASSWORD]) == ("alice", "hers")


def test_no_stack_secret_leaves_the_environment_alone(tmp_path):
    environ = _stack(tmp_path, **{"mlflow-reader": "r"})
    assert use_stack_login(environ=environ) is None
    assert USERNAME not in environ and PASSWORD not in environ


def test_another_account_is_taken_by_name(tmp_path):
    environ = _stack(tmp_path, **{"mlflow-pipeline": "p", "mlflow-reader": "r"})
    assert use_stack_login("reader", environ=environ) == "reader" and environ[PASSWORD] == "r"
