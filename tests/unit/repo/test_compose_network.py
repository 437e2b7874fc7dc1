"""docker-compose.yaml, checked as a file: the stack agrees with the local defaults (ml/settings,
docker/local/services), and services point at each other where they listen."""

from __future__ import annotations

import json
import re
from urllib.parse import urlparse

import yaml

from ml.settings import Settings
from tests.unit.repo.compose_file import (AIRFLOW, GRAFANA_PORT, MINIO_CONSOLE_PORT, POSTGRES_PORT, PROMETHEUS_PORT,
                                          ROOT, env, flag, listeners, ports)


def test_published_ports_match_local_defaults(services, stack):
    expected = {
        "kafka": {stack.kafka.KAFKA_PORT}, "mlflow": {stack.mlflow.MLFLOW_PORT},
        "airflow-apiserver": {stack.airflow.AIRFLOW_PORT},
        "minio": {stack.s3.S3_PORT, MINIO_CONSOLE_PORT}, "postgres": {POSTGRES_PORT},
        "prometheus": {PROMETHEUS_PORT}, "grafana": {GRAFANA_PORT},
    }
    for name, svc in services.items():
        published = {host for host, _ in ports(svc) if host is not None}
        assert published == expected.get(name, set()), f"{name}.ports publishes {published}, expected {expected.get(name, set())}"


def test_services_listen_where_they_are_published(services):
    kafka_env = env(services["kafka"])
    kafka_in = listeners(kafka_env["KAFKA_LISTENERS"])
    kafka_out = listeners(kafka_env["KAFKA_ADVERTISED_LISTENERS"])
    [(host_port, container_port)] = ports(services["kafka"])
    host_listener = [n for n, (host, _) in kafka_out.items() if host in ("localhost", "127.0.0.1")]
    assert host_listener, "kafka.KAFKA_ADVERTISED_LISTENERS has no listener for clients on the host"
    assert kafka_out[host_listener[0]][1] == host_port, "kafka: host listener is not advertised on the published port"
    assert kafka_in[host_listener[0]][1] == container_port, "kafka: published container port is not the host listener"
    listening = {
        "mlflow": {int(flag(services["mlflow"], "--port"))},
        "airflow-apiserver": {int(flag(services["airflow-apiserver"], "--port"))},
        "minio": {int(flag(services["minio"], f).lstrip(":")) for f in ("--address", "--console-address")},
    }
    for name, svc in services.items():
        for host, container in ports(svc):
            if name == "kafka":
                continue
            assert host == container, f"{name}.ports maps {host} to {container}: keep one number per service"
            assert container in listening.get(name, {container}), f"{name} publishes {container} but listens on {listening[name]}"


def test_serving_replicas_share_one_group_and_are_scraped(services):
    serving = services["serving"]
    serving_env = env(serving)
    port = Settings.model_fields["serving_port"].default
    assert serving.get("deploy", {}).get("replicas") == 2, "serving.deploy.replicas must be 2"
    assert not serving.get("ports"), "serving.ports: replicas cannot share a host port"
    assert serving_env.get("CONTINUUM_SERVING_GROUP"), "serving.environment.CONTINUUM_SERVING_GROUP is not set"
    assert serving_env.get("CONTINUUM_SERVING_PORT") == str(port), "serving.environment.CONTINUUM_SERVING_PORT"
    assert str(port) in [str(p) for p in serving.get("expose", [])], f"serving.expose lacks {port}"
    assert f":{port}/healthz" in " ".join(serving["healthcheck"]["test"]), "serving.healthcheck does not probe /healthz"
    prometheus = yaml.safe_load((ROOT / "docker/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    sd = jobs["serving"]["dns_sd_configs"][0]
    assert "serving" in sd["names"] and sd["port"] == port, f"prometheus.yml serving job must resolve serving:{port}"


def test_the_kafka_address_has_one_source(compose, services):
    """Every service that talks to the broker reads the `x-kafka-bootstrap` anchor; the address is spelled
    again only where YAML cannot splice it: the advertised listener and the Airflow connection's JSON."""
    address = compose["x-kafka-bootstrap"]
    readers = {name: env(services[name]).get("CONTINUUM_KAFKA_BOOTSTRAP") for name in ["serving", *AIRFLOW]}
    readers.update({"kafka-init": env(services["kafka-init"])["BOOTSTRAP"], "kafka": env(services["kafka"])["BOOTSTRAP"]})
    assert set(readers.values()) == {address}, readers
    assert "$$BOOTSTRAP" in " ".join(services["kafka"]["healthcheck"]["test"]), "kafka healthcheck"
    spelled = [line.strip() for line in (ROOT / "docker-compose.yaml").read_text().splitlines()
               if address in line and not line.strip().startswith("#")]
    assert len(spelled) == 3 and spelled[0].startswith("x-kafka-bootstrap: &kafka-bootstrap"), spelled
    assert {line.split(":")[0] for line in spelled[1:]} == {"AIRFLOW_CONN_KAFKA_DEFAULT", "KAFKA_ADVERTISED_LISTENERS"}


def test_in_network_addresses_point_at_the_services(services, stack):
    internal = [f"{h}:{p}" for h, p in listeners(env(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]).values()
                if h == "kafka"]
    assert internal, "kafka.KAFKA_ADVERTISED_LISTENERS has no listener for containers (host kafka)"
    bucket = env(services["minio-init"])["BUCKET"]
    assert bucket == stack.s3.S3_BUCKET, f"minio-init.BUCKET {bucket} is not the local bucket {stack.s3.S3_BUCKET}"
    assert env(services["kafka-init"])["BOOTSTRAP"] == internal[0], "kafka-init.BOOTSTRAP"
    assert urlparse(flag(services["mlflow"], "--artifacts-destination")).netloc == bucket, "mlflow artifacts bucket"
    mlflow_url = f"http://mlflow:{flag(services['mlflow'], '--port')}"
    assert f"mlflow:{flag(services['mlflow'], '--port')}" in flag(services["mlflow"], "--allowed-hosts").split(","), \
        "mlflow --allowed-hosts rejects the in-network name"
    for name in ["serving", *AIRFLOW]:
        e = env(services[name])
        assert e["CONTINUUM_KAFKA_BOOTSTRAP"] == internal[0], f"{name}.CONTINUUM_KAFKA_BOOTSTRAP"
        assert e["CONTINUUM_MLFLOW_TRACKING_URI"] == mlflow_url, f"{name}.CONTINUUM_MLFLOW_TRACKING_URI"
        assert e["CONTINUUM_S3_ENDPOINT_URL"] == "http://minio:9000", f"{name}.CONTINUUM_S3_ENDPOINT_URL"
        assert urlparse(e["CONTINUUM_LAKE_URI"]).netloc == bucket, f"{name}.CONTINUUM_LAKE_URI is not in {bucket}"
    api_port = flag(services["airflow-apiserver"], "--port")
    for name in AIRFLOW:
        e = env(services[name])
        conn = json.loads(e["AIRFLOW_CONN_KAFKA_DEFAULT"])
        assert conn["extra"]["bootstrap.servers"] == internal[0], f"{name}.AIRFLOW_CONN_KAFKA_DEFAULT"
        assert e["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://airflow-apiserver:{api_port}/execution/", name
        assert e["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres:5432/airflow"), f"{name}: metadata DB"
    assert env(services["mlflow"])["MLFLOW_BACKEND_STORE_URI"].endswith("@postgres:5432/mlflow"), "mlflow: store"
    databases = re.findall(r"CREATE DATABASE (\w+)", (ROOT / "docker/postgres/init-databases.sql").read_text())
    assert sorted(databases) == ["airflow", "mlflow"], f"docker/postgres/init-databases.sql creates {databases}"


def test_kafka_init_creates_exactly_the_local_topics(services, stack):
    specs = env(services["kafka-init"])["TOPICS"].split()
    topics = {spec.rsplit(":", 1)[0]: int(spec.rsplit(":", 1)[1]) for spec in specs}
    assert len(topics) == len(specs), f"kafka-init.TOPICS repeats a topic: {specs}"
    assert topics == stack.kafka.TOPICS, \
        f"kafka-init.TOPICS {topics} != docker/local/services/kafka.py TOPICS {stack.kafka.TOPICS}"
    assert "$$TOPICS" in " ".join(services["kafka-init"]["command"]), "kafka-init.command does not loop over TOPICS"


def test_grafana_provisions_the_dashboard_on_the_prometheus_datasource(services):
    provisioning = ROOT / "docker/grafana/provisioning"
    [datasource] = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())["datasources"]
    assert datasource["url"] == f"http://prometheus:{PROMETHEUS_PORT}", "grafana datasource url"
    mounts = {m.split(":")[1]: m.split(":")[0] for m in services["grafana"]["volumes"]}
    for provider_file in (provisioning / "dashboards").glob("*.yml"):
        for provider in yaml.safe_load(provider_file.read_text())["providers"]:
            folder = ROOT / mounts[provider["options"]["path"]]
            dashboards = list(folder.glob("*.json"))
            assert dashboards, f"{provider_file.name}: no dashboard in {folder}"
            for dashboard in dashboards:
                for panel in json.loads(dashboard.read_text())["panels"]:
                    uid = panel["datasource"]["uid"]
                    assert uid == datasource["uid"], f"{dashboard.name} panel {panel['title']!r}: datasource {uid}"


def test_the_local_broker_cluster_id_is_a_kafka_uuid_a_command_line_reads_as_a_value(stack):
    """One id in 64 used to start with '-', and kafka-storage then read it as an option and refused to
    format the broker's storage; the ids are drawn like Kafka's Uuid.randomUuid() and passed as
    --cluster-id=<id>."""
    import base64

    ids = {stack.kafka.cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    for text in ids:
        assert not text.startswith("-"), text
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", text), text
        assert len(base64.urlsafe_b64decode(text + "==")) == 16
