"""The MLflow model registry as Continuum uses it: versions, aliases, approval, audit, control messages.

    version = champion(client, settings.model_name)               # ModelVersion | None
    booster, threshold, tags = load_version(tracking_uri, name, version.version)
    record = set_champion(client, name, "7", actor="alice", reason="beats v6 on holdout", lake=lake)
    publish_control(producer, settings.topic_control, record)

Aliases `champion`, `challenger`, `previous`; every champion move is recorded once under `registry/audit/`
in the lake (one object per move) and announced on the control topic so every serving sidecar swaps at once.
"""

from ml.registry.aliases import AUDIT_PREFIX, LEGACY_AUDIT_KEY, audit_log, rollback_target, set_champion
from ml.registry.control import control_message, publish_control
from ml.registry.versions import (
    APPROVAL,
    APPROVED,
    CHALLENGER,
    CHAMPION,
    PENDING,
    PREVIOUS,
    REJECTED,
    RegistryError,
    by_alias,
    champion,
    load_version,
    version_url,
)

__all__ = [
    "APPROVAL", "APPROVED", "AUDIT_PREFIX", "CHALLENGER", "CHAMPION", "LEGACY_AUDIT_KEY", "PENDING", "PREVIOUS",
    "REJECTED", "RegistryError", "audit_log", "by_alias", "champion", "control_message", "load_version",
    "publish_control", "rollback_target", "set_champion", "version_url",
]
