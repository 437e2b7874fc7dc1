"""The local stack's process manager: where its services keep pid files and logs, and how one is
started in the background, waited for until healthy, found again by a later command and stopped.

A service is a `Service`: how to start it, how to tell it is ready, and where it listens.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
LOCAL = Path(os.environ.get("CONTINUUM_LOCAL_DIR", ROOT / ".local")).resolve()
RUN, LOGS = LOCAL / "run", LOCAL / "logs"


class StackError(RuntimeError):
    """A service could not be started; the message names it and its log."""


@dataclass(frozen=True)
class Service:
    """How to start a service, how to tell it is ready, and where it listens. An optional one (the live
    stream) starts only when named, and its absence does not make the stack unhealthy."""

    start: Callable[[], None]
    ready: Callable[[], bool]
    url: str
    optional: bool = False


def log(msg: str) -> None:
    print(f"[stack] {msg}", flush=True)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except OSError:
        return False


_CHILDREN: dict[str, subprocess.Popen] = {}  # started by this process: reaped here, so an exit is seen at once


def pid(name: str) -> int | None:
    path = RUN / f"{name}.pid"
    if not path.exists():
        return None
    child = _CHILDREN.get(name)
    if child is not None and child.poll() is not None:  # exited (a zombie still answers os.kill(pid, 0))
        path.unlink(missing_ok=True)
        return None
    found = int(path.read_text().strip() or 0)
    try:
        os.kill(found, 0)
    except (ProcessLookupError, PermissionError):
        path.unlink(missing_ok=True)
        return None
    return found


def spawn(name: str, cmd: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> int:
    RUN.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    log_file = open(LOGS / f"{name}.log", "ab")
    log_file.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(cmd)}\n".encode())
    log_file.flush()
    proc = subprocess.Popen(
        cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
    )
    (RUN / f"{name}.pid").write_text(str(proc.pid))
    _CHILDREN[name] = proc
    return proc.pid


def group_of(commands: list[str], first: str = "") -> list[str]:
    """One service made of several processes: a shell that runs `first`, then every command in the
    background, and exits when the last of them has. They share the process group `stop` signals, and
    the shell, kept alive by its trap, outlives each, so the pid the stack keeps lives as long as any."""
    script = "trap : TERM INT\n" + (f"{first} || exit 1\n" if first else "") + "".join(f"{c} &\n" for c in commands)
    return ["/bin/sh", "-c", script + "while ! wait; do :; done\n"]


def wait(name: str, check: Callable[[], bool], timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        if pid(name) is None:
            raise StackError(f"{name} exited during start-up; see {LOGS / (name + '.log')}")
        time.sleep(0.5)
    raise StackError(f"{name} not healthy after {timeout:.0f}s; see {LOGS / (name + '.log')}")


def instances(name: str) -> list[str]:
    """The processes a service runs as: itself and, for one run in several replicas, `<name>-2`, `<name>-3`..."""
    more = [path.stem for path in RUN.glob(f"{name}-*.pid") if path.stem[len(name) + 1:].isdigit()]
    return [name] + sorted(more, key=lambda stem: int(stem[len(name) + 1:]))


def stop(name: str) -> bool:
    """Stop a service and every replica of it; whether any was running."""
    return any([_stop(each) for each in reversed(instances(name))])


def _stop(name: str) -> bool:
    found = pid(name)
    if found is None:
        return False
    # PostgreSQL's server stops its own children; SIGINT is its fast shutdown (SIGTERM waits for clients)
    signal_of = {"postgres": (os.kill, signal.SIGINT)}
    send, sig = signal_of.get(name, (os.killpg, signal.SIGTERM))
    try:
        send(found, sig)
    except ProcessLookupError:
        pass
    for _ in range(60):
        if pid(name) is None:
            break
        time.sleep(0.5)
    else:
        try:
            send(found, signal.SIGKILL)
        except ProcessLookupError:
            pass
    (RUN / f"{name}.pid").unlink(missing_ok=True)
    return True
