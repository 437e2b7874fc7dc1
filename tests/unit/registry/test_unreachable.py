"""A registry or lake that did not answer is told apart from an answer: the first passes and is asked again,
the second is a verdict on what was asked."""

from __future__ import annotations

import pytest
import requests
from botocore.exceptions import EndpointConnectionError
from mlflow.exceptions import MlflowException

from ml.registry.digest import Untrusted
from ml.registry.versions import RegistryError, unreachable

URL = "http://127.0.0.1:5000/api/2.0/mlflow/model-versions/get"


def refused_connection() -> MlflowException:
    """What MLflow's client raises when nothing listens: its own error, made while handling requests'."""
    try:
        try:
            raise requests.exceptions.ConnectionError("HTTPConnectionPool(host='127.0.0.1', port=5000): refused")
        except requests.exceptions.ConnectionError as exc:
            raise MlflowException(f"API request to {URL} failed with exception {exc}") from None
    except MlflowException as exc:
        return exc


def test_a_connection_error_is_found_along_the_chain_even_when_wrapped_twice():
    assert unreachable(refused_connection())
    try:
        try:
            raise refused_connection()
        except MlflowException as exc:
            raise RegistryError(f"model 'm' has no version '2': {exc.message}") from None
    except RegistryError as wrapped:
        assert unreachable(wrapped)


@pytest.mark.parametrize("exc", [
    EndpointConnectionError(endpoint_url="http://127.0.0.1:9000/lake"),
    requests.exceptions.ReadTimeout("read timed out"),
    ConnectionRefusedError(111, "Connection refused"),
    # the artifact download folds each file's failure into one message, without the error it came from
    MlflowException("The following failures occurred while downloading one or more artifacts: HTTPConnectionPool"
                    "(host='127.0.0.1', port=5000): Max retries exceeded with url: /get-artifact"),
])
def test_no_answer_from_the_registry_or_the_lake_is_unreachable(exc):
    assert unreachable(exc)


@pytest.mark.parametrize("exc", [
    MlflowException("Registered Model with name=m not found", error_code="RESOURCE_DOES_NOT_EXIST"),
    MlflowException("Permission denied", error_code="PERMISSION_DENIED"),
    Untrusted("v2 failed its gates"),
    ValueError("threshold"),
])
def test_an_answer_is_not_unreachable(exc):
    assert not unreachable(exc)
