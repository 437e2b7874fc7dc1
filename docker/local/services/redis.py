"""Redis, the Celery broker of the embedded stack's CeleryExecutor (`CONTINUUM_EXECUTOR=celery`), run
from Debian's `redis-server` in the stack's folder, as docker-compose runs the `redis` image.

It listens on loopback only and asks every client for its password, generated at the first start into
`.local/secrets/redis`; the password reaches the server in its config file (mode 0600), never on its
command line, and Airflow's processes in their environment (`broker_url`).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

from credentials import secret, write_private
from processes import LOCAL, Service, StackError, log, port_open, spawn, wait
from services import executor

REDIS_PORT = int(os.environ.get("CONTINUUM_LOCAL_REDIS_PORT", "6379"))
REDIS_DIR = LOCAL / "redis"


def _redis_server() -> str:
    """The server program: from PATH, else installed with apt-get on a Debian machine run as root."""
    found = shutil.which("redis-server")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):  # as the stack installs PostgreSQL
        log("installing the Redis server (apt-get install redis-server)")
        subprocess.run(["apt-get", "update", "-qq"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "redis-server"], check=True,
                       stdout=subprocess.DEVNULL, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if shutil.which("redis-server"):
            return shutil.which("redis-server")
    raise StackError("the Redis server (redis-server) is not installed: install it (Debian/Ubuntu: apt-get install "
                     "redis-server; macOS: brew install redis) or put it on PATH")


def broker_url() -> str:
    """Celery's broker address, with the stack's Redis password (URL-safe by construction)."""
    return f"redis://:{secret('redis')}@127.0.0.1:{REDIS_PORT}/0"


def _command(*args: str) -> bytes:
    """One command in Redis's wire protocol (an array of bulk strings: any byte may appear in a value)."""
    parts = [a.encode() for a in args]
    return f"*{len(parts)}\r\n".encode() + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def ready() -> bool:
    """The server answers PING once logged in with the stack's password."""
    if not (REDIS_DIR / "redis.conf").exists() or not port_open(REDIS_PORT):
        return False
    try:
        with socket.create_connection(("127.0.0.1", REDIS_PORT), timeout=2) as sock:
            sock.sendall(_command("AUTH", secret("redis")) + _command("PING"))
            answer = b""
            while b"+PONG" not in answer and not answer.startswith(b"-"):
                chunk = sock.recv(256)
                if not chunk:
                    break
                answer += chunk
            return b"+OK\r\n+PONG\r\n" in answer
    except OSError:
        return False


def start() -> None:
    server = _redis_server()
    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    REDIS_DIR.chmod(0o700)  # its config holds the password
    write_private(REDIS_DIR / "redis.conf", "\n".join([
        "bind 127.0.0.1", f"port {REDIS_PORT}", "protected-mode yes", "daemonize no",
        f"requirepass {secret('redis')}", f"dir {REDIS_DIR}", "",  # its snapshots stay in the stack's folder
    ]))
    spawn("redis", [server, str(REDIS_DIR / "redis.conf")])
    took = wait("redis", ready, 30)
    log(f"redis ready on 127.0.0.1:{REDIS_PORT} (the Celery broker; password in .local/secrets/redis) "
        f"in {took:.1f}s")


# part of the stack under the CeleryExecutor; otherwise started only when named
SERVICE = Service(start, ready, f"127.0.0.1:{REDIS_PORT}", optional=not executor.celery())
