"""deploy/ checked as Kubernetes would take it: the project's chart rendered by `helm template` (helm built
once by deploy/build-helm.sh), every object validated against Kubernetes' own schemas (kubernetes-validate,
strict: an unknown field fails), the KEDA ScaledObject (a custom resource, outside those schemas) checked
against the Deployment it scales, and the official Airflow chart's values: their Kubernetes parts as the
pods carry them, and the Secrets both charts read, each listed with its keys in deploy/secrets.example.yaml."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from ml.settings import ENV_PREFIX, Settings
from tests.unit.repo.compose_file import ROOT
from tests.unit.repo.deploy_files import (AIRFLOW_VALUES, by_kind, env_of, helm, kafka_partitions, kube_versions,
                                          secret_refs, valid)

CHART = ROOT / "deploy" / "continuum"
EXAMPLE = ROOT / "deploy" / "secrets.example.yaml"
CUSTOM = {"ScaledObject"}  # KEDA's: not in Kubernetes' schemas, checked field by field below


def template(*sets: str) -> subprocess.CompletedProcess:
    """`helm template` of the project's chart with `--set` overrides, for the newest Kubernetes checked."""
    args = [a for s in sets for a in ("--set", s)]
    return subprocess.run([str(helm()), "template", "continuum", str(CHART), "--namespace", "ml",
                           "--kube-version", kube_versions()[-1], *args], capture_output=True, text=True, timeout=120)


def render(*sets: str) -> list[dict]:
    """The objects `template` renders."""
    out = template(*sets)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="module")
def default() -> list[dict]:
    return render()


def test_every_object_the_chart_renders_is_valid_kubernetes(default):
    kinds = sorted(o["kind"] for o in default)
    assert kinds == ["Deployment", "Deployment", "Job", "ScaledObject", "Service", "Service"], kinds
    without = render("serving.autoscaling.enabled=false", "mlflow.enabled=false",
                     "continuum.mlflowTrackingUri=http://mlflow.ml:5000")
    for obj in [o for o in default + without if o["kind"] not in CUSTOM]:
        valid(obj)


def test_the_sidecar_scales_on_its_consumer_groups_lag(default):
    [deployment] = [d for d in by_kind(default, "Deployment") if d["metadata"]["name"] == "continuum-serving"]
    [scaled] = by_kind(default, "ScaledObject")
    env = env_of(deployment)
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                               "name": deployment["metadata"]["name"]}
    [trigger] = scaled["spec"]["triggers"]
    meta = trigger["metadata"]
    assert trigger["type"] == "kafka"
    assert (meta["bootstrapServers"], meta["consumerGroup"], meta["topic"]) == (
        env["CONTINUUM_KAFKA_BOOTSTRAP"], env["CONTINUUM_SERVING_GROUP"], env["CONTINUUM_TOPIC_TELEMETRY"])
    assert meta["allowIdleConsumers"] == "false" and int(meta["lagThreshold"]) > 0
    assert meta["offsetResetPolicy"] == "earliest", "KEDA counts lag as the sidecar reads: a new group from the start"
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"] <= kafka_partitions("telemetry")
    assert "replicas" not in deployment["spec"], "KEDA owns the replica count: a fixed one would fight it"
    fields = {k.removeprefix(ENV_PREFIX).lower(): v for k, v in env.items() if k.startswith(ENV_PREFIX) and v}
    assert set(fields) <= set(Settings.model_fields), set(fields) - set(Settings.model_fields)
    Settings(_env_file=None, **fields)


def test_without_autoscaling_the_deployment_keeps_its_replicas():
    objects = render("serving.autoscaling.enabled=false", "serving.replicas=3")
    assert not by_kind(objects, "ScaledObject")
    [serving] = [d for d in by_kind(objects, "Deployment") if d["metadata"]["name"] == "continuum-serving"]
    assert serving["spec"]["replicas"] == 3


def test_a_sidecar_without_the_charts_mlflow_is_told_where_mlflow_is():
    refused = template("mlflow.enabled=false")
    assert refused.returncode != 0 and "continuum.mlflowTrackingUri" in refused.stderr, refused.stderr
    objects = render("mlflow.enabled=false", "continuum.mlflowTrackingUri=http://registry.ml:5000")
    assert [d["metadata"]["name"] for d in by_kind(objects, "Deployment")] == ["continuum-serving"]
    assert env_of(by_kind(objects, "Deployment")[0])["CONTINUUM_MLFLOW_TRACKING_URI"] == "http://registry.ml:5000"


def test_mlflow_answers_on_its_service_names_and_keeps_secrets_out_of_argv(default):
    [mlflow] = [d for d in by_kind(default, "Deployment") if d["metadata"]["name"] == "continuum-mlflow"]
    [container] = mlflow["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    hosts = command[command.index("--allowed-hosts") + 1].split(",")
    assert {"continuum-mlflow:5000", "continuum-mlflow.ml.svc:5000"} <= set(hosts)
    assert container["readinessProbe"]["httpGet"]["httpHeaders"][0]["value"] in hosts, "the probe's Host is refused"
    assert "--backend-store-uri" not in command and not any("postgresql://" in str(a) for a in command)
    assert "valueFrom" in {e["name"]: e for e in container["env"]}["MLFLOW_BACKEND_STORE_URI"]


def test_every_secret_the_charts_read_is_listed_with_its_keys(default):
    examples = list(yaml.safe_load_all(EXAMPLE.read_text()))
    for obj in examples:
        valid(obj)
    listed = {(o["metadata"]["name"], key) for o in examples for key in o["stringData"]}
    read = secret_refs(default) | secret_refs([AIRFLOW_VALUES])
    assert read, "no Secret read: the check would pass on anything"
    assert read <= listed, f"read but not in {EXAMPLE.name}: {sorted(read - listed)}"
    assert not {n for n, _ in listed} - {n for n, _ in read}, "the example lists a Secret nothing reads"


def test_the_airflow_values_run_the_kubernetes_executor_on_the_projects_image():
    from tests.unit.repo.test_lock import locked

    values = AIRFLOW_VALUES
    assert values["executor"] == "KubernetesExecutor"
    assert values["airflowVersion"] == locked("apache-airflow"), "the chart's Airflow is the image's (the lock's)"
    assert values["defaultAirflowRepository"] == "continuum-airflow"
    assert not values["dags"]["gitSync"]["enabled"] and not values["dags"]["persistence"]["enabled"], \
        "the DAGs are baked into the image"
    assert not values["postgresql"]["enabled"] and not values["redis"]["enabled"]
    env = {e["name"]: e["value"] for e in values["env"]}
    fields = {k.removeprefix(ENV_PREFIX).lower(): v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    assert set(fields) <= set(Settings.model_fields), set(fields) - set(Settings.model_fields)
    Settings(_env_file=None, **fields)
    assert re.fullmatch(r"AIRFLOW_CONN_[A-Z_]+", values["secret"][0]["envName"]), "connections come from Secrets"
    # the values' Kubernetes parts as a task pod carries them: env, the Secrets' variables, the resources
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "task"}, "spec": {"containers": [{
        "name": "base", "image": f"{values['defaultAirflowRepository']}:{values['defaultAirflowTag']}",
        "env": values["env"] + [{"name": s["envName"], "valueFrom": {"secretKeyRef": {
            "name": s["secretName"], "key": s["secretKey"]}}} for s in values["secret"]],
        "resources": values["workers"]["resources"]}]}}
    valid(pod)
    for component in ("scheduler", "apiServer", "dagProcessor", "triggerer"):
        valid({**pod, "spec": {"containers": [{**pod["spec"]["containers"][0],
                                               "resources": values[component]["resources"]}]}})
