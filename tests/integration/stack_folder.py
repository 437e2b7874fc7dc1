"""A stack folder of its own for a test of the stack's commands: services started there, on free ports,
never touch the running stack's."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STACK = [sys.executable, str(ROOT / "docker" / "local" / "stack.py")]


def free_port() -> int:
    """A port nothing listens on now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def stack_dir():
    """A stack folder of its own (under the repository's .local, which PostgreSQL's account can reach)."""
    folder = ROOT / ".local" / f"stack-check-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    env = {**os.environ, "CONTINUUM_LOCAL_DIR": str(folder), "CONTINUUM_LOCAL_POSTGRES_PORT": str(free_port())}
    yield folder, env
    subprocess.run(STACK + ["down", "postgres"], env=env, capture_output=True, timeout=60)
    shutil.rmtree(folder, ignore_errors=True)
