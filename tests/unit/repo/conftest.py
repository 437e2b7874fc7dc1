"""Fixtures of the compose tests: docker-compose.yaml parsed once, and the embedded stack's service
modules with their defaults, which the compose stack must agree with."""

from __future__ import annotations

import importlib
import sys
from types import SimpleNamespace

import pytest
import yaml

from tests.unit.repo.compose_file import ROOT


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def stack():
    """The embedded stack's service modules (docker/local/services), imported afresh with their defaults
    (no CONTINUUM_LOCAL_* overrides from this shell)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("KAFKA", "MLFLOW", "S3", "AIRFLOW"):
            mp.delenv(f"CONTINUUM_LOCAL_{name}_PORT", raising=False)
        mp.delenv("CONTINUUM_LOCAL_S3_BUCKET", raising=False)
        mp.syspath_prepend(str(ROOT / "docker" / "local"))
        for name in [m for m in sys.modules if m in ("processes", "services") or m.startswith("services.")]:
            mp.delitem(sys.modules, name)
        return SimpleNamespace(**{name: importlib.import_module(f"services.{name}")
                                  for name in ("kafka", "mlflow", "s3", "airflow")})
