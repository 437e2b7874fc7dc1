"""The MLflow model registry as Continuum uses it: versions, aliases, approval, audit, control messages.

    version = champion(client, settings.model_name)               # ModelVersion | None
    record = judge_version(tracking_uri, lake, name, "7", settings.gates, champion_version="6")   # gates, in the lake
    decide(client, lake, name, "7", APPROVED, BY_POLICY, AUTO, "every gate passed")  # ml.registry.approval
    model, verdict = load_trusted(tracking_uri, lake, name, "7")  # the one loader, verified: what may serve
    verify_artifact(tracking_uri, lake, name, "7")                # the file is still the one registered
    record = set_champion(client, name, "7", actor="alice", reason="beats v6 on holdout", lake=lake)
    recorded_move(lake, name, "7")                                # what serves a champion asks: moved by promotion?
    publish_control(producer, settings.topic_control, record)

Aliases `champion`, `challenger`, `previous`; every champion move is recorded once in the lake's audit
trail (`ml.audit`, one object per move; a champion no recorded move put there is not served) and
announced on the control topic so every serving sidecar swaps at once. A version serves only if its
verdict in the lake (`ml.lake.layout.verdict_key`) passed, is approved, and names the SHA-256 of the
model file downloaded; see `ml.registry.trust`. That digest is recorded when the
version is registered and agreed by its tag, its training run and its verdict (`ml.registry.digest`,
`expected_digest`): promotion and serving refuse a file that is not it. A version's approval
state (pending, approved, rejected) and its transitions live in `ml.registry.approval`.
"""

from ml.registry.aliases import UnrecordedMove, audit_log, recorded_move, rollback_target, set_champion
from ml.registry.approval import APPROVAL, APPROVED, PENDING, REJECTED
from ml.registry.artifact import ArtifactRefused, fetch_model, load_version
from ml.registry.control import control_message, publish_control
from ml.registry.digest import DigestMismatch, expected_digest, record_digest, verify_artifact
from ml.registry.trust import Untrusted, judge_version, load_trusted, read_verdict, record_approval, verify
from ml.registry.versions import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    RegistryError,
    by_alias,
    champion,
    model_url,
    run_url,
    version_url,
)

__all__ = [
    "APPROVAL", "APPROVED", "CHALLENGER", "CHAMPION", "PENDING", "PREVIOUS", "REJECTED", "ArtifactRefused",
    "DigestMismatch", "RegistryError", "UnrecordedMove", "Untrusted", "audit_log", "by_alias", "champion",
    "control_message", "expected_digest", "fetch_model", "judge_version", "load_trusted", "load_version", "model_url",
    "publish_control", "read_verdict", "record_approval", "record_digest", "recorded_move", "rollback_target",
    "run_url", "set_champion", "verify", "verify_artifact", "version_url",
]
