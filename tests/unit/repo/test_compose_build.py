"""docker-compose.yaml, checked as a file: every service can be pulled or built from what is in the
repository, mounts what exists, and starts only once what it depends on is healthy or done."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from pathlib import Path

from tests.unit.repo.compose_file import ONE_SHOT, REQUIRED, ROOT


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


def test_mounted_files_and_volumes_exist(compose, services):
    for name, svc in services.items():
        for mount in svc.get("volumes", []):
            source = mount["source"] if isinstance(mount, dict) else str(mount).split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}.volumes mounts {source}, which does not exist"
            else:
                assert source in (compose.get("volumes") or {}), f"{name}.volumes: named volume {source} undeclared"


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
