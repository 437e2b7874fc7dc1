"""Kafka in KRaft mode from the official jars (Java 17): one broker, the architecture's topics."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from processes import LOCAL, LOGS, ROOT, Service, StackError, log, port_open, spawn, wait

KAFKA_POM = ROOT / "docker" / "kafka-local" / "pom.xml"
KAFKA_DIR = LOCAL / "kafka"
KAFKA_PORT = int(os.environ.get("CONTINUUM_LOCAL_KAFKA_PORT", "9092"))

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


def _classpath() -> str:
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
        log("fetching Kafka jars from Maven Central (once)")
        shutil.rmtree(libs, ignore_errors=True)
        subprocess.run(
            ["mvn", "-q", "-B", "-f", str(KAFKA_POM), "dependency:copy-dependencies",
             f"-DoutputDirectory={libs}"],
            check=True,
        )
        stamp.write_text(digest)
    return f"{libs}/*"


def ready() -> bool:
    if not port_open(KAFKA_PORT):
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
        log(f"created topic {topic}")


# What Kafka's own launcher (bin/kafka-run-class.sh) runs the broker with when KAFKA_JVM_PERFORMANCE_OPTS is
# unset, as the compose broker gets it: G1 aiming at 20 ms pauses instead of the JVM's default 200 ms.
KAFKA_JVM_PERFORMANCE_OPTS = ("-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 "
                              "-XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true")


def start() -> None:
    classpath = _classpath()
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
    spawn("kafka", java[:1] + heap + tuning + java[1:] + ["kafka.Kafka", str(props)])
    took = wait("kafka", ready, 60)
    _create_topics()
    log(f"kafka ready on 127.0.0.1:{KAFKA_PORT} in {took:.1f}s")


def cluster_id() -> str:
    """A random KRaft cluster id, made as Kafka's own Uuid.randomUuid() makes one: 16 random bytes in
    URL-safe base64, drawn again when the text would start with '-' (a command line reads that as an option)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


SERVICE = Service(start, ready, f"127.0.0.1:{KAFKA_PORT}")
