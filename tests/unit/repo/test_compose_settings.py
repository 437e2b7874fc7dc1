"""docker-compose.yaml, checked as a file: the CONTINUUM_* variables it sets are valid settings, and
every variable it reads from the environment is documented in .env.example (secrets without a default)."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from ml.settings import ENV_PREFIX, Settings
from tests.unit.repo.compose_file import ROOT, SECRET_NAME, env


def test_continuum_variables_are_settings_fields_with_valid_values(services):
    defaults = {name: field.default for name, field in Settings.model_fields.items()}
    for name, svc in services.items():
        values = {k: v for k, v in env(svc).items() if k.startswith(ENV_PREFIX)}
        fields = {k.removeprefix(ENV_PREFIX).lower(): v for k, v in values.items()}
        unknown = sorted(k for k, f in zip(values, fields) if f not in defaults)
        assert not unknown, f"{name}.environment: {unknown} are not fields of ml.settings.Settings"
        try:
            Settings(_env_file=None, **fields)
        except ValidationError as exc:
            pytest.fail(f"{name}.environment is not valid for ml.settings.Settings: {exc}")
        for same in ("model_name", "contract"):
            if same in fields:
                assert fields[same] == defaults[same], f"{name}.environment: {same} differs from the local default"


def test_variables_compose_reads_are_documented_and_secrets_have_no_default():
    text = re.sub(r"(^|\s)#.*$", "", (ROOT / "docker-compose.yaml").read_text(), flags=re.M)
    documented = set(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M))
    refs = re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}", text)
    refs += [(v, "") for v in re.findall(r"(?<!\$)\$([A-Za-z_][A-Za-z0-9_]*)", text)]
    missing = sorted({var for var, _ in refs} - documented)
    assert not missing, f"docker-compose.yaml reads {missing}, which .env.example does not list"
    for var, modifier in refs:
        if SECRET_NAME.search(var) and modifier.startswith(("-", ":-")):
            assert modifier.lstrip(":-") == "", f"${{{var}}} has a default in docker-compose.yaml: secrets have none"


def test_environment_values_are_strings_or_numbers(services):
    for name, svc in services.items():
        raw = svc.get("environment") or {}
        for key, value in (raw.items() if isinstance(raw, dict) else []):
            assert not isinstance(value, bool), f"{name}.environment.{key}: compose rejects a YAML boolean, quote it"
