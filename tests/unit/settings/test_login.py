"""The MLflow login of hand-run tools: the environment's when set, else the local stack's pipeline account."""

from ml.settings.login import PASSWORD, USERNAME, stack_account, use_stack_login


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


def test_stack_account_logs_in_for_the_block_and_puts_the_login_back(tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "mlflow-admin").write_text("a\n")
    environ = {"CONTINUUM_LOCAL_DIR": str(tmp_path), USERNAME: "pipeline", PASSWORD: "p"}
    with stack_account("admin", environ=environ):
        assert (environ[USERNAME], environ[PASSWORD]) == ("admin", "a")
    assert (environ[USERNAME], environ[PASSWORD]) == ("pipeline", "p")
    with stack_account("nobody", environ=environ):  # no secret: the login stays
        assert environ[USERNAME] == "pipeline"
    bare = {"CONTINUUM_LOCAL_DIR": str(tmp_path)}
    with stack_account("admin", environ=bare):
        assert bare[USERNAME] == "admin"
    assert USERNAME not in bare and PASSWORD not in bare
