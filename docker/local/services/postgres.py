"""PostgreSQL, Airflow's metadata database, run from the server's own programs in the stack's folder.

Airflow keeps its state in PostgreSQL here as in docker-compose: on SQLite a backfill request that
meets the scheduler's writes fails half-way, and Airflow's clean-up of it can stop the scheduler.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import closing
from pathlib import Path

from processes import LOCAL, Service, StackError, log, port_open, spawn, wait
from credentials import adopt, secret, secret_path, write_private

POSTGRES_PORT = int(os.environ.get("CONTINUUM_LOCAL_POSTGRES_PORT", "5432"))
POSTGRES_USER = "continuum"
AIRFLOW_DB = os.environ.get("CONTINUUM_LOCAL_AIRFLOW_DB", "airflow")
PG_DIR = LOCAL / "postgres"
PG_PASSWORD_FILE = secret_path("postgres")  # generated at the first start, readable by its owner only


def _pg_bin(name: str) -> str:
    """A PostgreSQL server program: from PATH, else Debian's versioned folder (newest first)."""
    found = shutil.which(name) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)), None)
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):  # a Debian machine: install it, as Maven fetches Kafka
        log("installing the PostgreSQL server (apt-get install postgresql)")
        subprocess.run(["apt-get", "update", "-qq"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"], check=True,
                       stdout=subprocess.DEVNULL, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        return _pg_bin(name)
    raise StackError(f"the PostgreSQL server ({name}) is not installed: install it (Debian/Ubuntu: apt-get install "
                     "postgresql; macOS: brew install postgresql) or put its bin folder on PATH")


def _as_db_owner(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, its programs run as the `postgres` account."""
    if os.geteuid() != 0:
        return cmd
    import pwd

    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise StackError("running as root, the PostgreSQL server needs a `postgres` account (the Debian "
                         "package creates it): create one, or run the stack as an ordinary user") from None
    return [shutil.which("setpriv") or "setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] + cmd


def _password_file() -> Path:
    """The password's file, moved first from where earlier versions of the stack kept it."""
    adopt("postgres", LOCAL / "postgres.password")
    return PG_PASSWORD_FILE


def postgres_url(database: str = AIRFLOW_DB, driver: str = "postgresql+psycopg2") -> str:
    if not _password_file().exists():
        raise StackError(f"PostgreSQL has not been set up yet ({PG_PASSWORD_FILE} is missing): "
                         "run `python docker/local/stack.py up postgres` first")
    password = PG_PASSWORD_FILE.read_text().strip()
    return f"{driver}://{POSTGRES_USER}:{password}@127.0.0.1:{POSTGRES_PORT}/{database}"


def connect(database: str = "postgres"):
    """An autocommit connection to one database of the local server, as the stack's user."""
    import psycopg2

    conn = psycopg2.connect(postgres_url(database, driver="postgresql"), connect_timeout=3)
    conn.autocommit = True
    return conn


def ready() -> bool:
    if not _password_file().exists() or not port_open(POSTGRES_PORT):
        return False
    try:
        with closing(connect()) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            return True
    except Exception:  # noqa: BLE001 - any failure to connect and query means not ready
        return False


def _init() -> None:
    if PG_DIR.exists():
        shutil.rmtree(PG_DIR)  # an earlier set-up that did not finish
    PG_DIR.mkdir(parents=True)
    password = secret("postgres")
    pwfile = PG_DIR / ".initpw"
    write_private(pwfile, password)
    if os.geteuid() == 0:
        shutil.chown(PG_DIR, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
    proc = subprocess.run(
        _as_db_owner([_pg_bin("initdb"), "-D", str(PG_DIR / "data"), "-U", POSTGRES_USER, f"--pwfile={pwfile}",
                      "--auth=scram-sha-256", "-E", "UTF8", "--no-locale"]),
        capture_output=True, text=True)
    pwfile.unlink()
    if proc.returncode != 0:
        raise StackError(f"initdb failed in {PG_DIR}: {(proc.stderr or proc.stdout).strip()[-800:]}")


def start() -> None:
    if not (PG_DIR / "data" / "PG_VERSION").exists() or not _password_file().exists():
        _init()
    (PG_DIR / "data" / "postmaster.pid").unlink(missing_ok=True)  # left by a killed server
    spawn("postgres", _as_db_owner([
        _pg_bin("postgres"), "-D", str(PG_DIR / "data"), "-p", str(POSTGRES_PORT), "-h", "127.0.0.1",
        "-c", "unix_socket_directories=", "-c", "max_connections=200",
        # a local development database: a crash of the machine may lose the last commits, never corrupt
        "-c", "synchronous_commit=off",
    ]))
    took = wait("postgres", ready, 60)
    with closing(connect()) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (AIRFLOW_DB,))
        if cur.fetchone() is None:
            cur.execute(f"CREATE DATABASE {AIRFLOW_DB}")
    log(f"postgres ready on 127.0.0.1:{POSTGRES_PORT} (database {AIRFLOW_DB}) in {took:.1f}s")


SERVICE = Service(start, ready, f"127.0.0.1:{POSTGRES_PORT}")
