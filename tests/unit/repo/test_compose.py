"""docker-compose.yaml, checked as a file (no Docker engine runs the tests).

Every service can be pulled or built from what is in the repository, the stack agrees with the local
defaults (ml/settings.py, docker/local/services), services point at each other where they listen,
and every variable compose reads from the environment is documented in .env.example.
"""

from __future__ import annotations

import fnmatch
import importlib
import json
import re
import shlex
import sys
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import pytest
import yaml
from pydantic import ValidationError

from ml.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[3]
ONE_SHOT = {"kafka-init", "minio-init", "airflow-init"}
AIRFLOW = ["airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"]
REQUIRED = {"kafka", "minio", "postgres", "mlflow", *AIRFLOW, "serving", "prometheus", "grafana", *ONE_SHOT}
# Local defaults the embedded stack has no constant for (documented in the architecture).
MINIO_CONSOLE_PORT, POSTGRES_PORT, PROMETHEUS_PORT, GRAFANA_PORT = 9001, 5432, 9090, 3000
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|KEY")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def stack():
    """The embedded stack's service modules (docker/local/services), imported afresh with their defaults
    (no CONTINUUM_LOCAL_* overrides from this shell)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("KAFKA", "MLFLOW", "S3", "AIRFLOW"):
            mp.delenv(f"CONTINUUM_LOCAL_{name}_PORT", raising=False)
        mp.delenv("CONTINUUM_LOCAL_S3_BUCKET", raising=False)
        mp.syspath_prepend(str(ROOT / "docker" / "local"))
        for name in [m for m in sys.modules if m in ("processes", "services") or m.startswith("services.")]:
            mp.delitem(sys.modules, name)
        return SimpleNamespace(**{name: importlib.import_module(f"services.{name}")
                                  for name in ("kafka", "mlflow", "s3", "airflow")})


def env(service: dict) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {k: str(v) for k, v in raw.items()}


def ports(service: dict) -> list[tuple[int | None, int]]:
    """(host port or None, container port) for every `ports` entry, short or long syntax."""
    out = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            out.append((int(entry["published"]) if "published" in entry else None, int(entry["target"])))
            continue
        parts = str(entry).split("/")[0].split(":")
        out.append((int(parts[-2]) if len(parts) > 1 else None, int(parts[-1])))
    return out


def flag(service: dict, name: str) -> str:
    command = service["command"]
    command = shlex.split(command) if isinstance(command, str) else command
    return str(command[command.index(name) + 1])


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """KAFKA_(ADVERTISED_)LISTENERS -> {name: (host, port)}."""
    out = {}
    for item in value.split(","):
        name, address = item.split("://")
        host, _, port = address.rpartition(":")
        out[name] = (host, int(port))
    return out


def test_required_services_exist(services):
    assert REQUIRED <= services.keys(), f"missing services: {sorted(REQUIRED - services.keys())}"


def test_every_service_has_an_image_or_a_build_that_exists(services):
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, f"{name}: neither image nor build"
        if "build" not in svc:
            image = svc["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), f"{name}.image {image} is not pinned"
            continue
        build = svc["build"] if isinstance(svc["build"], dict) else {"context": svc["build"]}
        context = ROOT / build["context"]
        assert context.is_dir(), f"{name}.build.context {build['context']} does not exist"
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}.build.dockerfile {dockerfile.relative_to(ROOT)} does not exist"
        check_dockerfile(name, dockerfile, context)


def check_dockerfile(name: str, dockerfile: Path, context: Path) -> None:
    """FROM is pinned; every COPY/ADD source is in the build context and not in .dockerignore."""
    ignore_file = context / ".dockerignore"
    ignored = [p.strip() for p in ignore_file.read_text().splitlines()
               if p.strip() and not p.startswith("#")] if ignore_file.exists() else []
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    for line in (ln.strip() for ln in text.splitlines()):
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            image = rest.split()[0]
            assert ("@" in image or ":" in image) and not image.endswith(":latest"), f"{name}: FROM {image} is not pinned"
        if word.upper() not in ("COPY", "ADD"):
            continue
        args = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        if any(a.startswith("--from") for a in args):
            continue
        sources = [a for a in args if not a.startswith("--")][:-1]
        matched = {src: sorted(context.glob(src)) for src in sources}
        assert any(matched.values()), f"{name}: {dockerfile.name} `{line}` copies nothing"
        for src, found in matched.items():
            assert found or re.search(r"[*?\[]", src), f"{name}: {dockerfile.name} copies {src}, not in the context"
            for path in found:
                rel = path.relative_to(context).as_posix()
                hit = [p for p in ignored if fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(rel.split("/")[0], p)]
                assert not hit, f"{name}: {dockerfile.name} copies {rel}, which .dockerignore excludes ({hit})"


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


def test_continuum_variables_are_settings_fields_with_valid_values(services):
    defaults = {name: field.default for name, field in Settings.model_fields.items()}
    for name, svc in services.items():
        values = {k: v for k, v in env(svc).items() if k.startswith(ENV_PREFIX)}
        fields = {k.removeprefix(ENV_PREFIX).lower(): v for k, v in values.items()}
        unknown = sorted(k for k, f in zip(values, fields) if f not in defaults)
        assert not unknown, f"{name}.environment: {unknown} are not fields of ml.settings.Settings"
        try:
            Settings(_env_file=None, **fields)
        except ValidationError as exc:
            pytest.fail(f"{name}.environment is not valid for ml.settings.Settings: {exc}")
        for same in ("model_name", "contract"):
            if same in fields:
                assert fields[same] == defaults[same], f"{name}.environment: {same} differs from the local default"


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


def test_variables_compose_reads_are_documented_and_secrets_have_no_default():
    text = re.sub(r"(^|\s)#.*$", "", (ROOT / "docker-compose.yaml").read_text(), flags=re.M)
    documented = set(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M))
    refs = re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}", text)
    refs += [(v, "") for v in re.findall(r"(?<!\$)\$([A-Za-z_][A-Za-z0-9_]*)", text)]
    missing = sorted({var for var, _ in refs} - documented)
    assert not missing, f"docker-compose.yaml reads {missing}, which .env.example does not list"
    for var, modifier in refs:
        if SECRET_NAME.search(var) and modifier.startswith(("-", ":-")):
            assert modifier.lstrip(":-") == "", f"${{{var}}} has a default in docker-compose.yaml: secrets have none"


def test_environment_values_are_strings_or_numbers(services):
    for name, svc in services.items():
        raw = svc.get("environment") or {}
        for key, value in (raw.items() if isinstance(raw, dict) else []):
            assert not isinstance(value, bool), f"{name}.environment.{key}: compose rejects a YAML boolean, quote it"


def test_dependencies_wait_for_health_or_completion(services):
    for name, svc in services.items():
        one_shot = name in ONE_SHOT
        assert one_shot == (svc.get("restart") == "no"), f"{name}.restart: one-shot services and only they are 'no'"
        assert one_shot or "healthcheck" in svc, f"{name}: a long-running service needs a healthcheck"
        deps = svc.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}.depends_on must name a condition for each dependency"
        for dep, spec in deps.items():
            assert dep in services, f"{name}.depends_on.{dep}: no such service"
            condition = (spec or {}).get("condition")
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name}.depends_on.{dep}: {dep} has no healthcheck"
            else:
                assert condition == "service_completed_successfully" and dep in ONE_SHOT, \
                    f"{name}.depends_on.{dep}: condition {condition!r}"


def test_mounted_files_and_volumes_exist(compose, services):
    for name, svc in services.items():
        for mount in svc.get("volumes", []):
            source = mount["source"] if isinstance(mount, dict) else str(mount).split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}.volumes mounts {source}, which does not exist"
            else:
                assert source in (compose.get("volumes") or {}), f"{name}.volumes: named volume {source} undeclared"


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
