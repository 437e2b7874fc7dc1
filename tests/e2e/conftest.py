from tests.integration.conftest import kafka_bootstrap, mlflow_uri, settings  # noqa: F401  (the stack's fixtures)
