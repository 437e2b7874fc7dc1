"""`make test` runs the suite on a stack of its own: a stack running from the user's folder is paused
(stopped, its data kept) and resumed after, and the suite refuses a healthy service it did not start
rather than use someone's data."""

from __future__ import annotations

import subprocess

import pytest

from tests.integration.stack_folder import STACK, stack_dir  # noqa: F401  (a fixture)


def _stack(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(STACK + list(args), env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.timeout(240)
def test_pause_stops_what_runs_and_resume_starts_it_again_with_its_data(stack_dir):
    folder, env = stack_dir
    assert _stack(env, "up", "postgres").returncode == 0
    password = (folder / "secrets" / "postgres").read_text()
    record = folder / "paused"
    paused = _stack(env, "pause", "--started-file", str(record))
    assert paused.returncode == 0, paused.stderr
    assert record.read_text().split() == ["postgres"] and "its data stays in" in paused.stdout
    assert "postgres" in _stack(env, "status").stdout.split("\n")[3] and "stopped" in _stack(env, "status").stdout
    resumed = _stack(env, "resume", "--started-file", str(record))
    assert resumed.returncode == 0, resumed.stderr
    assert "postgres ready" in resumed.stdout and not record.exists()
    assert (folder / "secrets" / "postgres").read_text() == password, "the same database, the same password"
    # nothing running: pause records nothing and resume starts nothing
    _stack(env, "down", "postgres")
    assert _stack(env, "pause", "--started-file", str(record)).returncode == 0 and record.read_text() == ""
    assert "resuming" not in _stack(env, "resume", "--started-file", str(record)).stdout


@pytest.mark.timeout(240)
def test_up_own_refuses_a_healthy_service_another_folder_started(stack_dir, tmp_path):
    folder, env = stack_dir
    assert _stack(env, "up", "postgres").returncode == 0
    other = {**env, "CONTINUUM_LOCAL_DIR": str(folder / "other")}
    refused = _stack(other, "up", "postgres", "--own")
    assert refused.returncode == 1
    assert f"running, but not from {folder / 'other'}" in refused.stderr and "make down" in refused.stderr
    assert _stack(env, "up", "postgres", "--own").returncode == 0, "its own service is fine"
