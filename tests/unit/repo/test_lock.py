"""The lock: uv.lock holds every dependency's version, constraints.txt is its export, and everything that
installs the project (make, the Docker images) installs exactly those versions."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")


def locked(name: str, python: str = "3.11") -> str:
    """The version constraints.txt gives `name` on this Python (a line may carry a version marker)."""
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        pin, _, marker = line.partition(" ; ")
        if pin.startswith(f"{name}=="):
            if marker and not eval_marker(marker, python):
                continue
            return pin.split("==", 1)[1]
    raise AssertionError(f"{name} is not in constraints.txt")


def eval_marker(marker: str, python: str) -> bool:
    from packaging.markers import Marker

    return Marker(marker).evaluate({"python_full_version": f"{python}.0", "python_version": python,
                                    "sys_platform": "linux", "platform_system": "Linux"})


def uv_lock_check(project: Path) -> subprocess.CompletedProcess:
    assert UV, "uv is not installed in the venv; `make venv` installs it"
    return subprocess.run([UV, "lock", "--check", "--directory", str(project)], capture_output=True, text=True,
                          timeout=300)


def copy_project(tmp_path: Path) -> Path:
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "ml").mkdir()
    (tmp_path / "ml" / "__init__.py").write_text("")
    return tmp_path


def test_the_lock_matches_the_project_and_a_new_dependency_makes_the_check_fail(tmp_path):
    project = copy_project(tmp_path)
    assert uv_lock_check(project).returncode == 0, "uv.lock is stale: run `make lock`"
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"orjson>=3.10",', '"orjson>=3.10",\n    "tabulate>=0.9",'))
    result = uv_lock_check(project)
    assert result.returncode != 0 and "needs to be updated" in result.stderr, result.stderr


def test_every_direct_dependency_is_pinned_in_the_constraints():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    for req in requirements:
        name = re.split(r"[\[<>=!~; ]", req, maxsplit=1)[0].lower()
        if name == project["name"]:  # an extra that includes another extra of the project (test -> datasets)
            continue
        assert re.fullmatch(r"[0-9][0-9a-z.+-]*", locked(name)), f"{name}: no exact version in constraints.txt"


@pytest.mark.parametrize("dockerfile", ["docker/airflow/Dockerfile", "docker/serving/Dockerfile"])
def test_the_project_images_install_with_the_constraints(dockerfile):
    text = (ROOT / dockerfile).read_text()
    assert "constraints.txt" in text and re.search(r"pip install [^\n]*-c /tmp/continuum/constraints\.txt", text), \
        f"{dockerfile} does not install with the lock's constraints"


def test_pinned_images_and_packages_agree_with_the_lock():
    airflow = (ROOT / "docker/airflow/Dockerfile").read_text()
    assert f"apache/airflow:{locked('apache-airflow')}-python3.11" in airflow
    mlflow = (ROOT / "docker/mlflow/Dockerfile").read_text()
    assert f"ghcr.io/mlflow/mlflow:v{locked('mlflow')}" in mlflow
    for name in ("psycopg2-binary", "boto3", "flask-wtf"):
        assert f'"{name}=={locked(name)}"' in mlflow, f"docker/mlflow/Dockerfile: {name} is not at the lock's version"


def test_make_installs_from_the_constraints():
    makefile = (ROOT / "Makefile").read_text()
    assert makefile.count("-c constraints.txt -e '.[test]'") == 2, "both the uv and the pip install use the lock"
    assert re.search(r"^test: .*lock-check", makefile, re.M), "make test checks the lock first"
