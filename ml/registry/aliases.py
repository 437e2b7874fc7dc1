"""Move the `champion` alias (the old one becomes `previous`) and keep an audit trail of every move.

The audit trail is `registry/audit.jsonl` in the lake: one JSON object a line with who moved the
alias, when, from which version to which, and why. Promotion and rollback share `set_champion`.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from mlflow import MlflowClient

from ml.lake import Lake
from ml.registry.versions import CHALLENGER, CHAMPION, PREVIOUS, RegistryError, by_alias, champion

AUDIT_KEY = "registry/audit.jsonl"


def set_champion(client: MlflowClient, name: str, version: str | int, actor: str, reason: str, lake: Lake,
                 kind: str = "promotion") -> dict:
    """Point `champion` at `version`, the old champion becoming `previous`; append and return the audit record.

    Rerunning for the version that is already champion changes nothing and returns the record of the
    move that made it champion (so a retried task neither overwrites `previous` nor audits twice)."""
    version = str(version)
    client.get_model_version(name, version)  # fails naming the version if it does not exist
    current = champion(client, name)
    if current is not None and current.version == version:
        moves = [r for r in audit_log(lake) if r["model"] == name and r["to"] == version]
        return moves[-1] if moves else {"type": kind, "model": name, "alias": CHAMPION, "from": version,
                                         "to": version, "actor": actor, "at": current.tags.get("champion_since", ""),
                                         "reason": "already champion"}
    old = current.version if current is not None else None
    if old is not None:
        client.set_registered_model_alias(name, PREVIOUS, old)
    client.set_registered_model_alias(name, CHAMPION, version)
    challenger = by_alias(client, name, CHALLENGER)
    if challenger is not None and challenger.version == version:
        client.delete_registered_model_alias(name, CHALLENGER)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    client.set_model_version_tag(name, version, "champion_since", now)
    record = {"type": kind, "model": name, "alias": CHAMPION, "from": old, "to": version, "actor": actor,
              "at": now, "reason": reason}
    append_audit(lake, record)
    return record


def rollback_target(client: MlflowClient, name: str, version: str | int | None = None) -> str:
    """The version a rollback returns to: the one asked for, else the `previous` alias."""
    if version not in (None, ""):
        client.get_model_version(name, str(version))
        return str(version)
    previous = by_alias(client, name, PREVIOUS)
    if previous is None:
        raise RegistryError(f"model {name!r} has no `previous` version to roll back to; give a version")
    return previous.version


def append_audit(lake: Lake, record: dict) -> None:
    """Append one record to the audit trail (read, extend, rewrite atomically)."""
    text = lake.read_text(AUDIT_KEY) if lake.exists(AUDIT_KEY) else ""
    lake.write_text(AUDIT_KEY, text + json.dumps(record, sort_keys=True) + "\n")


def audit_log(lake: Lake) -> list[dict]:
    """Every alias move recorded so far, oldest first."""
    if not lake.exists(AUDIT_KEY):
        return []
    return [json.loads(line) for line in lake.read_text(AUDIT_KEY).splitlines() if line.strip()]
