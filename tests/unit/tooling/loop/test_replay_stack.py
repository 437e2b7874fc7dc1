"""The replay's stack switch: whether the restore after it can be left to the test command, and the
end-to-end tests' order that makes that safe (the replay, which switches the contract, runs last)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from tests.conftest import pytest_collection_modifyitems
from tooling.loop.replay_stack import stopped_after_tests


def test_the_restore_is_left_to_the_test_command_only_when_it_started_airflow(tmp_path):
    started = tmp_path / "test-started"
    assert not stopped_after_tests(started)  # no test command running: the stack stays up, restore it
    started.write_text("kafka\nmlflow\ns3\npostgres")  # Airflow was already up: it outlives the tests
    assert not stopped_after_tests(started)
    started.write_text("kafka\nmlflow\ns3\npostgres\nairflow")
    assert stopped_after_tests(started)


def test_the_replay_runs_after_every_other_test():
    root = Path("/repo/tests")
    paths = ["e2e/test_replay.py", "e2e/test_loop.py", "unit/test_policy.py", "integration/test_offload.py"]
    items = [SimpleNamespace(path=root / p) for p in paths]
    pytest_collection_modifyitems(None, items)
    assert [str(i.path.relative_to(root)) for i in items] == [
        "unit/test_policy.py", "integration/test_offload.py", "e2e/test_loop.py", "e2e/test_replay.py"]
