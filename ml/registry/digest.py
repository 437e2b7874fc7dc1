"""The SHA-256 a registered version's model file must have, and the check of a downloaded file against it.

    record_digest(tracking_uri, name, "7")                  # registration: tag the digest of the bytes registered
    expected = expected_digest(client, lake, name, "7")     # the reference every check compares with
    found = verify_artifact(tracking_uri, lake, name, "7")  # promotion: download, hash, compare

A version's digest is written down by three writers: its training run logs the digest of the model it
trained as a param (`model_sha256`; MLflow never lets a param change), registration tags the version with
the digest of the bytes it registered (tag `model_sha256`, shown in the MLflow UI), and promote_model's
verdict in the lake records the digest its gates judged (written once). The reference is the digest they
all agree on: one record that differs from another means a record or the file was changed after the fact,
and the version is refused. A tag can be set by anyone who can reach the registry, so a tag alone is
never enough: the run's param or the verdict must be there too. A version registered before the tag
existed is checked against its run and verdict, with a warning that it carries no tag.
"""

from __future__ import annotations

import json
import logging

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ml.lake import Lake
from ml.lake.layout import verdict_key
from ml.registry.artifact import downloaded, sha256
from ml.registry.versions import RegistryError, unreachable

log = logging.getLogger(__name__)
DIGEST_TAG = "model_sha256"  # the version tag; the training run's param has the same name
TAG, RUN, VERDICT = "version tag", "training run", "verdict"


class Untrusted(RegistryError):
    """A version may not serve or be judged; the message says why and what to do."""


class DigestMismatch(Untrusted):
    """A model file is not the one recorded for its version; `evidence` holds what on-call needs:
    model, version, expected and found digests, and the artifact's URI."""

    def __init__(self, model: str, version: str, expected: str, found: str, artifact_uri: str) -> None:
        self.evidence = {"model": model, "version": str(version), "expected": expected, "found": found,
                         "artifact_uri": artifact_uri}
        super().__init__(f"v{version}'s model file ({artifact_uri}) has sha256 {found}, not the {expected} recorded "
                         "when it was registered: the artifact changed after registration; register the model "
                         "again as a new version")


def read_verdict(lake: Lake, name: str, version: str | int) -> dict | None:
    """A version's verdict in the lake (gates, digest judged, approval), or None before it is judged."""
    key = verdict_key(name, version)
    return json.loads(lake.read_text(key)) if lake.exists(key) else None


def agreed_digest(name: str, version: str | int, records: dict[str, str | None]) -> str:
    """The one digest the records of a version (`TAG`, `RUN`, `VERDICT` -> digest or None) agree on;
    Untrusted when two differ or when nothing but the editable tag records one."""
    present = {source: digest for source, digest in records.items() if digest}
    if len(set(present.values())) > 1:
        said = ", ".join(f"{source} {digest}" for source, digest in sorted(present.items()))
        raise Untrusted(f"{name} v{version}'s recorded model digests disagree ({said}): a record or the model "
                        "was changed after registration; register the model again as a new version")
    if not present.keys() - {TAG}:
        raise Untrusted(f"{name} v{version} has no model digest from its training run or a verdict, so its file "
                        "cannot be verified: register it from a training run (ml.train) and run promote_model")
    if TAG not in present:
        log.warning("%s v%s has no %s tag (registered before it was recorded); checked against its %s",
                    name, version, DIGEST_TAG, " and ".join(sorted(present)))
    return next(iter(present.values()))


def expected_digest(client: MlflowClient, lake: Lake, name: str, version: str | int) -> str:
    """The SHA-256 the model file of `name` v`version` must have: the one recorded at registration, agreed
    by its tag, its training run and its verdict (`agreed_digest`); Untrusted otherwise."""
    try:
        mv = client.get_model_version(name, str(version))
    except MlflowException as exc:
        if unreachable(exc):  # no answer is not "no such version": the caller may ask again
            raise
        raise RegistryError(f"model {name!r} has no version {version!r}: {exc.message}") from None
    trained = client.get_run(mv.run_id).data.params.get(DIGEST_TAG) if mv.run_id else None
    verdict = read_verdict(lake, name, mv.version)
    return agreed_digest(name, mv.version, {TAG: mv.tags.get(DIGEST_TAG), RUN: trained,
                                            VERDICT: verdict["digest"] if verdict else None})


def check_digest(client: MlflowClient, lake: Lake, name: str, version: str | int, found: str,
                 artifact_uri: str) -> str:
    """The expected digest if `found` (measured on the file from `artifact_uri`) is it; DigestMismatch
    with the evidence otherwise."""
    expected = expected_digest(client, lake, name, version)
    if found != expected:
        raise DigestMismatch(name, str(version), expected, found, artifact_uri)
    return expected


def verify_artifact(tracking_uri: str, lake: Lake, name: str, version: str | int) -> str:
    """Download a version's model file as it is now and check it against its recorded digest; returns
    the digest, DigestMismatch (or Untrusted) otherwise."""
    with downloaded(tracking_uri, name, version) as (mv, path, source):
        found = sha256(path)
    check_digest(MlflowClient(tracking_uri), lake, name, mv.version, found, source)
    return found


def record_digest(tracking_uri: str, name: str, version: str | int) -> str:
    """Tag a just-registered version with the SHA-256 of its model file, measured on the bytes the
    registry holds; returns it."""
    with downloaded(tracking_uri, name, version) as (mv, path, _):
        digest = sha256(path)
    MlflowClient(tracking_uri).set_model_version_tag(name, mv.version, DIGEST_TAG, digest)
    return digest
