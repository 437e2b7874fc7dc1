"""The registry's audit trail in the lake: one write-once JSON object per alias move.

Each record is its own object, named by its `id` (`<UTC time>-<random hex>`, see
`ml.lake.layout.audit_record_key`), so writers never read-modify-write a shared file: any number of
them, on a local folder or on S3 (which has no append), can record moves at once and none loses
another's. A record is written
under an id the caller keeps, so a retried write lands on the same object with the same content.
Readers list the folder in key order, which is time order, after the lines of the older single-file
trail (`layout.legacy_audit_key`) when a lake still has one.

This module reads and writes records only; `ml.registry` decides what a move is. It imports no MLflow,
so the loop report can read the trail cheaply.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

from ml.lake import Lake
from ml.lake.layout import audit_prefix, audit_record_key, legacy_audit_key


def new_record_id(now: datetime | None = None) -> str:
    """A fresh record id that sorts by time: `20261122T130501123456Z-<12 hex>`."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:12]}"


def write_record(lake: Lake, record: dict) -> str:
    """Write one record under its `id` (one is given when it has none) and return its key.

    Writing the same record again replaces the object with identical content: a retry adds nothing."""
    record.setdefault("id", new_record_id())
    key = audit_record_key(record["id"])
    lake.write_text(key, json.dumps(record, sort_keys=True) + "\n")
    return key


def read_records(lake: Lake) -> tuple[list[dict], list[str]]:
    """(every readable record oldest first, what was left out and why).

    The legacy trail's lines come first (it was closed before the first per-record object was
    written), then the objects in key order. An unreadable line or object is named, never fatal."""
    records: list[dict] = []
    problems: list[str] = []
    legacy = legacy_audit_key()
    if lake.exists(legacy):
        for n, line in enumerate(lake.read_text(legacy).splitlines(), 1):
            if line.strip():
                _parse(line, f"{legacy} line {n}", records, problems)
    for key in lake.list(audit_prefix()):
        if key.endswith(".json"):
            try:
                text = lake.read_text(key)
            except (FileNotFoundError, UnicodeDecodeError) as exc:
                problems.append(f"{key}: left out, {exc}")
                continue
            _parse(text, key, records, problems)
    return records, problems


def _parse(text: str, where: str, records: list[dict], problems: list[str]) -> None:
    try:
        record = json.loads(text)
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:  # JSONDecodeError is a ValueError
        problems.append(f"{where}: left out, {exc}")
        return
    records.append(record)
