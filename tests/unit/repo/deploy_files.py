"""deploy/ read for the chart tests: helm (built once by deploy/build-helm.sh), Kubernetes' schemas
(kubernetes-validate, for the oldest Kubernetes the chart supports and the newest the package ships), the
official Airflow chart's values, and the readers of a rendered object's environment and Secrets."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import yaml

from tests.unit.repo.compose_file import ROOT, env

BUILD_HELM = ROOT / "deploy" / "build-helm.sh"
AIRFLOW_VALUES = yaml.safe_load((ROOT / "deploy" / "airflow" / "values.yaml").read_text())
# the Airflow chart's Secrets named by a value, and the key it reads from each
AIRFLOW_SECRET_KEYS = {"metadataSecretName": "connection", "fernetKeySecretName": "fernet-key",
                       "apiSecretKeySecretName": "api-secret-key", "jwtSecretName": "jwt-secret"}


@functools.cache
def helm() -> Path:
    """helm of the version deploy/build-helm.sh names, built into .local/bin when it is not there yet."""
    built = subprocess.run(["bash", str(BUILD_HELM)], capture_output=True, text=True, timeout=1800)
    assert built.returncode == 0, f"deploy/build-helm.sh failed: {built.stderr[-2000:]}"
    return ROOT / ".local" / "bin" / "helm"


@functools.cache
def kube_versions() -> tuple[str, ...]:
    """The oldest Kubernetes the chart supports (its kubeVersion) and the newest kubernetes-validate knows."""
    import kubernetes_validate

    floor = yaml.safe_load((ROOT / "deploy" / "continuum" / "Chart.yaml").read_text())["kubeVersion"]
    return floor.lstrip(">=").split("-")[0], kubernetes_validate.latest_version()


def valid(obj: dict) -> None:
    """`obj` passes Kubernetes' strict schema of its kind at both ends of the supported versions."""
    import kubernetes_validate

    for version in kube_versions():
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(f"{obj['kind']} {obj['metadata'].get('name')} is not valid on Kubernetes "
                                 f"{version}: {exc.message} at {'.'.join(map(str, exc.path))}") from None


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def env_of(workload: dict) -> dict[str, str | None]:
    """The first container's variables: a value, or None for one read from a Secret."""
    container = workload["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def kafka_partitions(topic: str) -> int:
    """The topic's partitions as the stacks create it (docker-compose's kafka-init, the local broker's list)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    specs = dict(spec.split(":") for spec in env(compose["services"]["kafka-init"])["TOPICS"].split())
    return int(specs[topic])


def secret_refs(node) -> set[tuple[str, str]]:
    """Every (Secret, key) a rendered object or the Airflow values read: secretKeyRefs, mounted Secrets'
    items, the Airflow chart's `secret` entries and its *SecretName values."""
    found: set[tuple[str, str]] = set()
    if isinstance(node, list):
        for item in node:
            found |= secret_refs(item)
    elif isinstance(node, dict):
        if "secretName" in node and "items" in node:  # a Secret volume
            found |= {(node["secretName"], item["key"]) for item in node["items"]}
        if {"secretName", "secretKey"} <= node.keys():  # the Airflow chart's `secret` entry
            found.add((node["secretName"], node["secretKey"]))
        for value_name, key in AIRFLOW_SECRET_KEYS.items():
            if node.get(value_name):
                found.add((node[value_name], key))
        for key, value in node.items():
            if key != "secretKeyRef":
                found |= secret_refs(value)
            else:
                found.add((value["name"], value["key"]))
    return found
