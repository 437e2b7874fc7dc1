import pytest

from ml.settings import Settings, SettingsError, load_settings


def test_defaults_are_the_local_stack(monkeypatch):
    for var in ("CONTINUUM_KAFKA_BOOTSTRAP", "CONTINUUM_MLFLOW_TRACKING_URI", "CONTINUUM_LAKE_URI"):
        monkeypatch.delenv(var, raising=False)
    s = Settings(_env_file=None)
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.mlflow_tracking_uri == "http://127.0.0.1:5000"
    assert s.kafka.topics["telemetry"] == "telemetry" and s.kafka.topics["dlq"] == "telemetry.dlq"


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("CONTINUUM_LAKE_URI", "s3://bucket/some/prefix/")
    monkeypatch.setenv("CONTINUUM_S3_ENDPOINT_URL", "http://minio:9000/")
    s = load_settings()
    assert s.lake_uri == "s3://bucket/some/prefix"
    assert s.s3_endpoint_url == "http://minio:9000"


@pytest.mark.parametrize(
    "var, value",
    [
        ("CONTINUUM_LAKE_URI", "ftp://host/lake"),
        ("CONTINUUM_LAKE_URI", "s3:///no-bucket"),
        ("CONTINUUM_KAFKA_BOOTSTRAP", "localhost"),
        ("CONTINUUM_MLFLOW_TRACKING_URI", "127.0.0.1:5000"),
        ("CONTINUUM_SERVING_PORT", "eighty"),
        ("CONTINUUM_SERVING_PORT", "70000"),
        ("CONTINUUM_DASK_SCHEDULER", "127.0.0.1"),
        ("CONTINUUM_DASK_SCHEDULER", "tcp://scheduler"),
        ("CONTINUUM_RETRAIN_STREAM_ROWS", "10"),
        ("CONTINUUM_APPROVERS", " , "),
        ("CONTINUUM_APPROVERS", ""),
        ("CONTINUUM_APPROVAL_TTL_HOURS", "0"),
    ],
)
def test_a_wrong_value_names_the_variable_and_the_fix(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    message = str(err.value)
    assert var in message
    assert "fix:" in message


def test_a_scheduler_address_is_kept():
    assert load_settings(dask_scheduler=" tcp://10.0.0.5:8786 ").retrain.dask_scheduler == "tcp://10.0.0.5:8786"
