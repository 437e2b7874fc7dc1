"""Move the `champion` alias (the old one becomes `previous`) and keep an audit trail of every move.

The audit trail lives in the lake (`ml.audit`): one write-once record per move, with who moved the
alias, when, from which version to which, and why. Promotion and rollback share `set_champion`.

A move is safe to retry at any step. Before touching an alias, the move's record is stored on the
target version (tag `champion_move`); every later step either repeats harmlessly or is skipped when
already done, and the audit record is written under the id stored with it. So a task that fails
after `previous` moved, after `champion` moved or after the audit write, and is retried, ends with
one move, `previous` on the real previous champion, and one audit record.

MLflow's permissions are per registered model, not per alias: an account that may set `challenger`
may set `champion` too. So what serves the champion asks the audit trail, which only the promotion
and rollback tasks write (`recorded_move`): a champion the latest recorded move did not put there
was moved around the promotion path, and is not served.
"""

from __future__ import annotations

import json
import logging
from typing import Callable

from mlflow import MlflowClient

from ml import clock
from ml.audit import new_record_id, read_records, write_record
from ml.lake import Lake
from ml.lake.layout import audit_record_key
from ml.registry.versions import CHALLENGER, CHAMPION, PREVIOUS, RegistryError, by_alias, champion

__all__ = ["MOVE_TAG", "UnrecordedMove", "append_audit", "audit_log", "recorded_move", "rollback_target",
           "set_champion"]

log = logging.getLogger(__name__)
MOVE_TAG = "champion_move"  # on the version: the record of the move that made it champion (JSON)

def set_champion(client: MlflowClient, name: str, version: str | int, actor: str, reason: str, lake: Lake,
                 kind: str = "promotion", on_move: Callable[[str, str], None] | None = None) -> dict:
    """Point `champion` at `version`, the old champion becoming `previous`; record and return the audit record.

    `on_move(alias, version)` is called after each alias move (for logs). Rerunning for the version that
    is already champion moves nothing: it finishes the move that made it champion if a failure cut it
    short (audit record included) and returns that move's record, so a retried task neither overwrites
    `previous` nor audits twice."""
    version = str(version)
    client.get_model_version(name, version)  # fails naming the version if it does not exist
    current = champion(client, name)
    if current is not None and current.version == version:
        record = _stored_move(current.tags.get(MOVE_TAG), name, version)
        if record is None:
            return _untracked(lake, name, version, actor, kind, current)
        return _settle(client, name, record, lake)
    old = current.version if current is not None else None
    now = clock.now(lake)  # event time during a paced replay: the champion at an event's time is answerable
    record = {"id": new_record_id(), "type": kind, "model": name, "alias": CHAMPION, "from": old, "to": version,
              "actor": actor, "at": now.isoformat(timespec="seconds"), "reason": reason}
    client.set_model_version_tag(name, version, MOVE_TAG, json.dumps(record, sort_keys=True))
    if old is not None:
        previous = by_alias(client, name, PREVIOUS)
        if previous is None or previous.version != old:
            client.set_registered_model_alias(name, PREVIOUS, old)
            _moved(on_move, PREVIOUS, old)
    client.set_registered_model_alias(name, CHAMPION, version)
    _moved(on_move, CHAMPION, version)
    return _settle(client, name, record, lake)

def _settle(client: MlflowClient, name: str, record: dict, lake: Lake) -> dict:
    """The steps after `champion` moved, each done once however often it runs: release `challenger`,
    stamp `champion_since`, write the audit record."""
    version = record["to"]
    challenger = by_alias(client, name, CHALLENGER)
    if challenger is not None and challenger.version == version:
        client.delete_registered_model_alias(name, CHALLENGER)
    if client.get_model_version(name, version).tags.get("champion_since") != record["at"]:
        client.set_model_version_tag(name, version, "champion_since", record["at"])
    if not lake.exists(audit_record_key(record["id"])):
        write_record(lake, dict(record))
    return record

def _stored_move(text: str | None, name: str, version: str) -> dict | None:
    """The move record a version carries, or None when it has none (or an unreadable one)."""
    try:
        record = json.loads(text) if text else None
    except ValueError:
        record = None
    if not isinstance(record, dict) or record.get("model") != name or record.get("to") != version \
            or not isinstance(record.get("id"), str) or not record.get("at"):
        if text:
            log.warning("%s v%s: tag %s is not a move record; the audit trail is not completed from it",
                        name, version, MOVE_TAG)
        return None
    return record

def _untracked(lake: Lake, name: str, version: str, actor: str, kind: str, current) -> dict:
    """A champion with no stored move (moved by hand, or before moves were stored): the last audit record
    that made it champion, else a record saying so. Nothing is written."""
    moves = [r for r in audit_log(lake) if r.get("model") == name and r.get("to") == version]
    return moves[-1] if moves else {"type": kind, "model": name, "alias": CHAMPION, "from": version,
                                     "to": version, "actor": actor, "at": current.tags.get("champion_since", ""),
                                     "reason": "already champion"}

def _moved(on_move: Callable[[str, str], None] | None, alias: str, version: str) -> None:
    if on_move is not None:
        on_move(alias, version)

def rollback_target(client: MlflowClient, name: str, version: str | int | None = None) -> str:
    """The version a rollback returns to: the one asked for, else the `previous` alias."""
    if version not in (None, ""):
        client.get_model_version(name, str(version))
        return str(version)
    previous = by_alias(client, name, PREVIOUS)
    if previous is None:
        raise RegistryError(f"model {name!r} has no `previous` version to roll back to; give a version")
    return previous.version

def append_audit(lake: Lake, record: dict) -> str:
    """Add one record to the audit trail as its own object (no other writer can lose it); returns its key."""
    return write_record(lake, record)

def audit_log(lake: Lake) -> list[dict]:
    """Every alias move recorded so far, oldest first; an unreadable record is logged and left out."""
    records, problems = read_records(lake)
    for problem in problems:
        log.warning("audit trail: %s", problem)
    return records

class UnrecordedMove(RegistryError):
    """The `champion` alias points at a version no recorded promotion or rollback put there."""

def recorded_move(lake: Lake, name: str, version: str | int) -> dict:
    """The audit record of the move that made `version` the champion of `name`: the model's latest
    champion move, if it went to `version`; UnrecordedMove naming what the trail says otherwise."""
    moves = [r for r in audit_log(lake) if r.get("model") == name and r.get("alias", CHAMPION) == CHAMPION]
    if moves and str(moves[-1].get("to")) == str(version):
        return moves[-1]
    last = f"its latest recorded move is to v{moves[-1].get('to')} ({moves[-1].get('at')})" if moves \
        else "no move of it is recorded"
    raise UnrecordedMove(f"{name}'s champion alias points at v{version}, but {last} in the audit trail: the alias "
                         "was moved around promote_model and rollback_model, and it is not served until one of "
                         "them moves the champion")
