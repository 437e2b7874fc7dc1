"""The embedded local stack: Kafka (KRaft), MLflow, an S3 endpoint, PostgreSQL and Airflow, as local processes.

    python docker/local/stack.py up [SERVICE ...] [--started-file F]
    python docker/local/stack.py down [SERVICE ...] [--started-file F]
    python docker/local/stack.py status
    python docker/local/stack.py reset-airflow     # stop Airflow, empty its metadata database (make demo)

PostgreSQL holds Airflow's metadata (as in docker-compose); it is installed with apt-get when it is
missing on a Debian machine run as root, and otherwise named as a prerequisite.

Every service listens on loopback; pid files live in .local/run, logs in .local/logs. `up` starts only
what is not already healthy and can record what it started, so `make test` stops exactly that.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
LOCAL = Path(os.environ.get("CONTINUUM_LOCAL_DIR", ROOT / ".local")).resolve()
RUN, LOGS = LOCAL / "run", LOCAL / "logs"
KAFKA_POM = ROOT / "docker" / "kafka-local" / "pom.xml"
KAFKA_DIR = LOCAL / "kafka"
S3_PORT = int(os.environ.get("CONTINUUM_LOCAL_S3_PORT", "9000"))
S3_BUCKET = os.environ.get("CONTINUUM_LOCAL_S3_BUCKET", "continuum-lake")
AIRFLOW_PORT = int(os.environ.get("CONTINUUM_LOCAL_AIRFLOW_PORT", "8080"))
MLFLOW_PORT = int(os.environ.get("CONTINUUM_LOCAL_MLFLOW_PORT", "5000"))
KAFKA_PORT = int(os.environ.get("CONTINUUM_LOCAL_KAFKA_PORT", "9092"))
SERVING_PORT = int(os.environ.get("CONTINUUM_SERVING_PORT", "8000"))
POSTGRES_PORT = int(os.environ.get("CONTINUUM_LOCAL_POSTGRES_PORT", "5432"))
POSTGRES_USER = "continuum"
AIRFLOW_DB = os.environ.get("CONTINUUM_LOCAL_AIRFLOW_DB", "airflow")

# Topic -> partitions; names follow the architecture (settings may rename them for other deployments).
TOPICS = {
    "telemetry": 6,
    "outcomes": 3,
    "predictions": 6,
    "predictions.shadow": 3,
    "alerts": 1,
    "telemetry.dlq": 1,
    "control": 1,
}


class StackError(RuntimeError):
    """A service could not be started; the message names it and its log."""


def _log(msg: str) -> None:
    print(f"[stack] {msg}", flush=True)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except OSError:
        return False


_CHILDREN: dict[str, subprocess.Popen] = {}  # started by this process: reaped here, so an exit is seen at once


def _pid(name: str) -> int | None:
    path = RUN / f"{name}.pid"
    if not path.exists():
        return None
    child = _CHILDREN.get(name)
    if child is not None and child.poll() is not None:  # exited (a zombie still answers os.kill(pid, 0))
        path.unlink(missing_ok=True)
        return None
    pid = int(path.read_text().strip() or 0)
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        path.unlink(missing_ok=True)
        return None
    return pid


def _spawn(name: str, cmd: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> int:
    RUN.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    log = open(LOGS / f"{name}.log", "ab")
    log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(cmd)}\n".encode())
    log.flush()
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
    )
    (RUN / f"{name}.pid").write_text(str(proc.pid))
    _CHILDREN[name] = proc
    return proc.pid


def _wait(name: str, check: Callable[[], bool], timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        if _pid(name) is None:
            raise StackError(f"{name} exited during start-up; see {LOGS / (name + '.log')}")
        time.sleep(0.5)
    raise StackError(f"{name} not healthy after {timeout:.0f}s; see {LOGS / (name + '.log')}")


def _stop(name: str) -> bool:
    pid = _pid(name)
    if pid is None:
        return False
    # PostgreSQL's server stops its own children; SIGINT is its fast shutdown (SIGTERM waits for clients)
    signal_of = {"postgres": (os.kill, signal.SIGINT)}
    send, sig = signal_of.get(name, (os.killpg, signal.SIGTERM))
    try:
        send(pid, sig)
    except ProcessLookupError:
        pass
    for _ in range(60):
        if _pid(name) is None:
            break
        time.sleep(0.5)
    else:
        try:
            send(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    (RUN / f"{name}.pid").unlink(missing_ok=True)
    return True


# --- Kafka ----------------------------------------------------------------------------------------

def _kafka_classpath() -> str:
    """Jars of an unpacked official distribution (KAFKA_HOME) or fetched from Maven Central."""
    home = os.environ.get("KAFKA_HOME")
    if home:
        libs = Path(home) / "libs"
        if not libs.is_dir():
            raise StackError(f"KAFKA_HOME={home} has no libs/ folder; unset it or point it at an unpacked Kafka")
        return f"{libs}/*"
    libs = KAFKA_DIR / "libs"
    stamp = KAFKA_DIR / "libs.sha256"
    digest = hashlib.sha256(KAFKA_POM.read_bytes()).hexdigest()
    if not (stamp.exists() and stamp.read_text() == digest):
        if not shutil.which("mvn"):
            raise StackError("Maven (mvn) is needed to fetch the Kafka jars; install it or set KAFKA_HOME")
        _log("fetching Kafka jars from Maven Central (once)")
        shutil.rmtree(libs, ignore_errors=True)
        subprocess.run(
            ["mvn", "-q", "-B", "-f", str(KAFKA_POM), "dependency:copy-dependencies",
             f"-DoutputDirectory={libs}"],
            check=True,
        )
        stamp.write_text(digest)
    return f"{libs}/*"


def _kafka_ready() -> bool:
    if not _port_open(KAFKA_PORT):
        return False
    from confluent_kafka.admin import AdminClient

    try:
        AdminClient({"bootstrap.servers": f"127.0.0.1:{KAFKA_PORT}"}).list_topics(timeout=2)
        return True
    except Exception:
        return False


def _create_topics() -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{KAFKA_PORT}"})
    existing = admin.list_topics(timeout=10).topics
    new = [NewTopic(t, num_partitions=n, replication_factor=1) for t, n in TOPICS.items() if t not in existing]
    for topic, fut in admin.create_topics(new).items() if new else []:
        fut.result(timeout=30)
        _log(f"created topic {topic}")


# What Kafka's own launcher (bin/kafka-run-class.sh) runs the broker with when KAFKA_JVM_PERFORMANCE_OPTS is
# unset, as the compose broker gets it: G1 aiming at 20 ms pauses instead of the JVM's default 200 ms.
KAFKA_JVM_PERFORMANCE_OPTS = ("-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 "
                              "-XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true")


def start_kafka() -> None:
    classpath = _kafka_classpath()
    data = KAFKA_DIR / "data"
    props = KAFKA_DIR / "server.properties"
    KAFKA_DIR.mkdir(parents=True, exist_ok=True)
    props.write_text(
        (ROOT / "docker" / "kafka-local" / "server.properties").read_text()
        .replace("@DATA@", str(data)).replace("@PORT@", str(KAFKA_PORT))
        .replace("@CONTROLLER_PORT@", str(KAFKA_PORT + 1))
    )
    java = ["java", "-cp", classpath, f"-Dlog4j2.configurationFile={ROOT / 'docker/kafka-local/log4j2.properties'}",
            f"-Dkafka.logs.dir={LOGS}"]
    if not (data / "meta.properties").exists():
        subprocess.run(java + ["kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id()}", "-c", str(props)],
                       check=True, stdout=subprocess.DEVNULL)
    heap = os.environ.get("KAFKA_HEAP_OPTS", "-Xms256m -Xmx1g").split()
    tuning = os.environ.get("KAFKA_JVM_PERFORMANCE_OPTS", KAFKA_JVM_PERFORMANCE_OPTS).split()
    _spawn("kafka", java[:1] + heap + tuning + java[1:] + ["kafka.Kafka", str(props)])
    took = _wait("kafka", _kafka_ready, 60)
    _create_topics()
    _log(f"kafka ready on 127.0.0.1:{KAFKA_PORT} in {took:.1f}s")


def cluster_id() -> str:
    """A random KRaft cluster id, made as Kafka's own Uuid.randomUuid() makes one: 16 random bytes in
    URL-safe base64, drawn again when the text would start with '-' (a command line reads that as an option)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


# --- MLflow ---------------------------------------------------------------------------------------

def _mlflow_ready() -> bool:
    return _http_ok(f"http://127.0.0.1:{MLFLOW_PORT}/health")


def start_mlflow() -> None:
    home = LOCAL / "mlflow"
    home.mkdir(parents=True, exist_ok=True)
    _spawn("mlflow", [
        str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(MLFLOW_PORT),
        "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
        "--artifacts-destination", str(home / "artifacts"), "--workers", "2",
    ])
    took = _wait("mlflow", _mlflow_ready, 120)
    _log(f"mlflow ready on http://127.0.0.1:{MLFLOW_PORT} in {took:.1f}s")


# --- S3 (moto's standalone server) ----------------------------------------------------------------

def _s3_ready() -> bool:
    return _http_ok(f"http://127.0.0.1:{S3_PORT}/moto-api/")


def start_s3() -> None:
    _spawn("s3", [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(S3_PORT)])
    took = _wait("s3", _s3_ready, 60)
    import boto3

    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{S3_PORT}", region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    if S3_BUCKET not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket=S3_BUCKET)
    _log(f"s3 endpoint ready on http://127.0.0.1:{S3_PORT} (bucket {S3_BUCKET}) in {took:.1f}s")


# --- PostgreSQL (Airflow's metadata database) ----------------------------------------------------
# Airflow keeps its state in PostgreSQL here as in docker-compose: on SQLite a backfill request that
# meets the scheduler's writes fails half-way, and Airflow's clean-up of it can stop the scheduler.

PG_DIR = LOCAL / "postgres"
PG_PASSWORD_FILE = LOCAL / "postgres.password"  # generated at the first start, readable by its owner only


def _pg_bin(name: str) -> str:
    """A PostgreSQL server program: from PATH, else Debian's versioned folder (newest first)."""
    found = shutil.which(name) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)), None)
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):  # a Debian machine: install it, as Maven fetches Kafka
        _log("installing the PostgreSQL server (apt-get install postgresql)")
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


def postgres_url(database: str = AIRFLOW_DB, driver: str = "postgresql+psycopg2") -> str:
    if not PG_PASSWORD_FILE.exists():
        raise StackError(f"PostgreSQL has not been set up yet ({PG_PASSWORD_FILE} is missing): "
                         "run `python docker/local/stack.py up postgres` first")
    password = PG_PASSWORD_FILE.read_text().strip()
    return f"{driver}://{POSTGRES_USER}:{password}@127.0.0.1:{POSTGRES_PORT}/{database}"


def _pg_connect(database: str = "postgres"):
    import psycopg2

    conn = psycopg2.connect(postgres_url(database, driver="postgresql"), connect_timeout=3)
    conn.autocommit = True
    return conn


def _postgres_ready() -> bool:
    if not PG_PASSWORD_FILE.exists() or not _port_open(POSTGRES_PORT):
        return False
    try:
        with closing(_pg_connect()) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            return True
    except Exception:  # noqa: BLE001 - any failure to connect and query means not ready
        return False


def _init_postgres() -> None:
    import secrets

    if PG_DIR.exists():
        shutil.rmtree(PG_DIR)  # an earlier set-up that did not finish
    PG_DIR.mkdir(parents=True)
    password = secrets.token_urlsafe(24)
    pwfile = PG_DIR / ".initpw"
    pwfile.write_text(password)
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
    PG_PASSWORD_FILE.write_text(password)
    PG_PASSWORD_FILE.chmod(0o600)


def start_postgres() -> None:
    if not (PG_DIR / "data" / "PG_VERSION").exists() or not PG_PASSWORD_FILE.exists():
        _init_postgres()
    (PG_DIR / "data" / "postmaster.pid").unlink(missing_ok=True)  # left by a killed server
    _spawn("postgres", _as_db_owner([
        _pg_bin("postgres"), "-D", str(PG_DIR / "data"), "-p", str(POSTGRES_PORT), "-h", "127.0.0.1",
        "-c", "unix_socket_directories=", "-c", "max_connections=200",
        # a local development database: a crash of the machine may lose the last commits, never corrupt
        "-c", "synchronous_commit=off",
    ]))
    took = _wait("postgres", _postgres_ready, 60)
    with closing(_pg_connect()) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (AIRFLOW_DB,))
        if cur.fetchone() is None:
            cur.execute(f"CREATE DATABASE {AIRFLOW_DB}")
    _log(f"postgres ready on 127.0.0.1:{POSTGRES_PORT} (database {AIRFLOW_DB}) in {took:.1f}s")


# --- Airflow --------------------------------------------------------------------------------------

def airflow_env() -> dict[str, str]:
    """Environment of the local Airflow: home, repo folders, PostgreSQL, connections from env vars."""
    home = LOCAL / "airflow"
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # the embedded stack exists to run the loop: its DAGs start unpaused (compose keeps Airflow's default)
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") or postgres_url(),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(AIRFLOW_PORT),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{AIRFLOW_PORT}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{AIRFLOW_PORT}/execution/",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        "CONTINUUM_LAKE_URI": str(LOCAL / "lake"),
        # on-call alerts also go to a log file and the alerts topic here (webhook/e-mail need connections)
        "CONTINUUM_ALERT_LOG_PATH": str(LOGS / "alerts.jsonl"),
        "CONTINUUM_ALERT_STATE_PATH": str(LOCAL / "alerts" / "state.json"),
        "CONTINUUM_ALERT_TO_TOPIC": "true",
        "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps(
            {"conn_type": "kafka", "extra": {"bootstrap.servers": f"127.0.0.1:{KAFKA_PORT}"}}
        ),
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
    }
    env = {k: os.environ.get(k, v) for k, v in env.items()}
    # standalone runs its components as `airflow ...` subprocesses: the venv's bin must come first
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return env


def _airflow_ready() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{AIRFLOW_PORT}/api/v2/monitor/health", timeout=2) as resp:
            health = json.load(resp)
    except (OSError, ValueError):
        return False
    return all(health.get(c, {}).get("status") == "healthy" for c in ("metadatabase", "scheduler"))


def airflow_login() -> str:
    path = LOCAL / "airflow" / "simple_auth_manager_passwords.json.generated"
    if not path.exists():
        return "(the login appears once Airflow has started)"
    users = json.loads(path.read_text())
    return ", ".join(f"{user} / {password}" for user, password in users.items())


def start_airflow() -> None:
    if not _postgres_ready():
        raise StackError(f"airflow needs its database: PostgreSQL is not answering on 127.0.0.1:{POSTGRES_PORT}; "
                         "start it first (`python docker/local/stack.py up postgres airflow`)")
    (LOCAL / "airflow").mkdir(parents=True, exist_ok=True)
    _spawn("airflow", [str(Path(sys.executable).with_name("airflow")), "standalone"], env=airflow_env())
    took = _wait("airflow", _airflow_ready, 240)
    _log(f"airflow ready on http://127.0.0.1:{AIRFLOW_PORT} in {took:.1f}s; login: {airflow_login()}")


def reset_airflow() -> None:
    """Stop Airflow and empty its metadata database, so the next `up airflow` starts with no runs: the
    loop's runs of earlier plays (and their history) go; connections and the login stay (they come
    from the environment and the password file). A database without DAG runs is left as it is. Runs
    are not deleted one by one through the API: that races the scheduler, which holds them."""
    if not _postgres_ready():
        raise StackError(f"PostgreSQL is not answering on 127.0.0.1:{POSTGRES_PORT}: "
                         "start it first (`python docker/local/stack.py up postgres`)")
    import psycopg2

    try:
        with closing(_pg_connect(AIRFLOW_DB)) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM dag_run")
            runs = cur.fetchone()[0]
    except psycopg2.Error:  # no tables yet, or no database: start over
        runs = None
    if runs == 0:
        return
    _stop("airflow")
    with closing(_pg_connect()) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {AIRFLOW_DB} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {AIRFLOW_DB}")
    _log(f"airflow stopped, its metadata database emptied ({'unreadable' if runs is None else f'{runs} DAG runs'})")


# --- serving sidecar ------------------------------------------------------------------------------

def _serving_up() -> bool:
    """The sidecar answers on its port (503 until a champion exists still means it is up)."""
    import urllib.error

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{SERVING_PORT}/healthz", timeout=2.0):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def start_serving() -> None:
    """One sidecar replica (`continuum-serve`): it waits for a champion, then scores the telemetry topic."""
    env = {"CONTINUUM_KAFKA_BOOTSTRAP": f"127.0.0.1:{KAFKA_PORT}",
           "CONTINUUM_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{MLFLOW_PORT}",
           "CONTINUUM_SERVING_PORT": str(SERVING_PORT), "CONTINUUM_SERVING_POLL_S": "5",
           "CONTINUUM_LAKE_URI": str(LOCAL / "lake"),  # the model verdicts promote_model records
           "PYTHONPATH": str(ROOT)}
    _spawn("serving", [str(Path(sys.executable).with_name("continuum-serve"))], {**env, **{
        k: v for k, v in os.environ.items() if k in env}})
    took = _wait("serving", _serving_up, 60)
    _log(f"serving sidecar up on http://127.0.0.1:{SERVING_PORT}/healthz in {took:.1f}s (it scores once a champion exists)")


@dataclass(frozen=True)
class Service:
    start: Callable[[], None]
    ready: Callable[[], bool]
    url: str


SERVICES = {
    "kafka": Service(start_kafka, _kafka_ready, f"127.0.0.1:{KAFKA_PORT}"),
    "mlflow": Service(start_mlflow, _mlflow_ready, f"http://127.0.0.1:{MLFLOW_PORT}"),
    "s3": Service(start_s3, _s3_ready, f"http://127.0.0.1:{S3_PORT}"),
    "postgres": Service(start_postgres, _postgres_ready, f"127.0.0.1:{POSTGRES_PORT}"),
    "airflow": Service(start_airflow, _airflow_ready, f"http://127.0.0.1:{AIRFLOW_PORT}"),
    "serving": Service(start_serving, _serving_up, f"http://127.0.0.1:{SERVING_PORT}"),
}


def up(names: list[str], started_file: Path | None) -> None:
    started = []
    for name in names:
        if SERVICES[name].ready():
            _log(f"{name} already running at {SERVICES[name].url}")
            continue
        _stop(name)  # a stale process that is not healthy
        started.append(name)
        if started_file:  # recorded before the start, so a failed start is still stopped by `down`
            started_file.parent.mkdir(parents=True, exist_ok=True)
            started_file.write_text("\n".join(started))
        SERVICES[name].start()


def down(names: list[str], started_file: Path | None) -> None:
    if started_file:
        names = started_file.read_text().split() if started_file.exists() else []
        started_file.unlink(missing_ok=True)
    for name in reversed(names):
        _log(f"{name} {'stopped' if _stop(name) else 'was not running'}")


def status() -> bool:
    healthy = True
    for name, svc in SERVICES.items():
        ok = svc.ready()
        pid = _pid(name)
        state = "healthy" if ok else ("starting/unhealthy" if pid else "stopped")
        print(f"{name:8} {state:18} {svc.url:26} pid={pid or '-'}  log={LOGS / (name + '.log')}")
        healthy &= ok
    if SERVICES["airflow"].ready():
        print(f"airflow login: {airflow_login()}")
    return healthy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "status", "reset-airflow"],
                        help="reset-airflow: stop Airflow and empty its metadata database (the demo's clean slate)")
    parser.add_argument("services", nargs="*", help=f"any of {', '.join(SERVICES)} (default: all)")
    parser.add_argument("--started-file", type=Path, help="record (up) or read (down) the services this run started")
    args = parser.parse_args(argv)
    unknown = [s for s in args.services if s not in SERVICES]
    if unknown:
        parser.error(f"unknown service {', '.join(unknown)}; choose from {', '.join(SERVICES)}")
    names = args.services or list(SERVICES)
    try:
        if args.command == "up":
            up(names, args.started_file)
        elif args.command == "reset-airflow":
            reset_airflow()
        elif args.command == "down":
            down(names, args.started_file)
        else:
            return 0 if status() else 1
    except (StackError, subprocess.CalledProcessError) as exc:
        print(f"[stack] error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
