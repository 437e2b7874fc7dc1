"""Models rolled back after their bake window, marked in the lake so they are never promoted again.

    mark = mark_rolled_back(client, lake, name, "8", actor="monitor_model (bake)", reason=..., audit_id=..., evidence=...)

The marks are read, and a verdict failed by one, where verdicts are trusted: `ml.registry.trust.rolled_back`
and `with_mark`.

The mark is named by the model file's SHA-256 (`ml.lake.layout.rolled_back_key`), so the same model
registered again under a new version number is refused too. Marking also rewrites the version's verdict
(`ml.registry.trust`), which is what serving and promotion trust: it fails the `bake` gate
(`ml.gates.bake_gate`) and its approval becomes rejected, so the version can neither be promoted nor
served again, whatever its editable tags say. The tags show the same to people.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from mlflow import MlflowClient

from ml.gates import bake_gate
from ml.lake import Lake
from ml.lake.layout import rolled_back_key, verdict_key
from ml.registry.approval import APPROVAL, APPROVAL_REASON, APPROVED_BY, tag_gates
from ml.registry.digest import Untrusted, read_verdict
from ml.registry.states import AUTO, REJECTED
from ml.registry.trust import rolled_back, with_mark


def mark_rolled_back(client: MlflowClient, lake: Lake, name: str, version: str, actor: str, reason: str,
                     audit_id: str | None = None, evidence: dict | None = None) -> dict:
    """Mark a version's model file as rolled back (who, when, why, the audit record of the rollback, the
    evidence) and fail its verdict's bake gate; returns the mark. Marking again keeps the first mark."""
    verdict = read_verdict(lake, name, version)
    if verdict is None:
        raise Untrusted(f"{name} v{version} has no verdict in {lake.url(verdict_key(name, version))}: "
                        "only a judged version can have served, and be marked as rolled back")
    mark = rolled_back(lake, name, verdict["digest"])
    if mark is None:
        mark = {"model": name, "version": str(version), "digest": verdict["digest"], "actor": actor,
                "reason": reason, "audit_id": audit_id, "evidence": evidence or {},
                "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        lake.write_text(rolled_back_key(name, verdict["digest"]), json.dumps(mark, indent=1, sort_keys=True))
    record = with_mark(verdict, mark)
    record["approval"] = {"decision": REJECTED, "by": actor, "how": AUTO, "reason": reason, "at": mark["at"],
                          "digest": verdict["digest"]}
    lake.write_text(verdict_key(name, version), json.dumps(record, indent=1, sort_keys=True))
    tag_gates(client, name, str(version), [bake_gate(mark)])
    for key, value in ((APPROVAL, REJECTED), (APPROVED_BY, actor), (APPROVAL_REASON, reason)):
        client.set_model_version_tag(name, str(version), key, value)
    return mark
