"""Validate one offloaded hour of the lake and record the verdict in its manifest.

`validate_hour` reads the files the hour's manifest lists, checks them against the manifest (row
counts, checksums), runs the contract's suite, writes GE's result (`layout.validation_result_key`, with
the rows the offload quarantined, by reason) and GE's Data Docs (`layout.validation_docs_prefix`), then
rewrites the manifest with `status` 'valid' or 'invalid' and a `validation` summary. An hour in which
nothing arrived at all (no rows, nothing quarantined) is 'empty': a silent stream is not bad data, so no
expectation is run on it. The manifest's `content_sha256` leaves both out, so validating never changes
what the hour is said to hold.
Drift and training read only hours that `valid_hours` returns (neither invalid nor empty ones).
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from ml.contract import Contract
from ml.contract.codec import codec_for
from ml.lake import Lake
from ml.lake.layout import manifest_hash, manifest_key, validation_docs_prefix, validation_result_key
from ml.lake.window import HOUR, Window
from ml.validation.engine import failures, run_suite
from ml.validation.suite import WINDOW_END, WINDOW_START, load_suite

VALID, INVALID, EMPTY = "valid", "invalid", "empty"
# GE's docs site ships ~4 MB of fonts and animations per copy; the pages load their styles from CDNs
# and read fine without these, so each hour keeps only its pages and stylesheets.
_DOCS_SKIP = ("static/fonts/", "static/images/")


@dataclass(frozen=True)
class ValidationOutcome:
    """The verdict on one hour: what failed (critical) or looked odd (warnings), and where the evidence is."""

    status: str  # 'valid' | 'invalid' | 'empty'
    success: bool  # every expectation passed, warnings included
    critical_failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    result_key: str = ""
    docs_key: str = ""
    rows: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)  # rows the offload kept out of the hour, by reason

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """One paragraph for an alert or a task log."""
        if self.status == EMPTY:
            return "empty: no events arrived in the hour (no expectation run; drift and training skip it)"
        head = f"{self.status}: {self.rows} rows, {len(self.critical_failures)} critical failures, {len(self.warnings)} warnings"
        if self.quarantined:
            head += ", quarantined " + ", ".join(f"{n} {reason}" for reason, n in self.quarantined.items())
        return "\n".join([head, *(f"CRITICAL {f}" for f in self.critical_failures), *(f"WARNING {w}" for w in self.warnings)])


def validate_hour(lake: Lake, contract: Contract, topic_kind: str, window: Window, suite: dict | None = None,
                  expectations_dir: str | Path | None = None) -> ValidationOutcome:
    """Validate one offloaded hour and mark it valid or invalid in its manifest (rerunnable).

    `suite` defaults to the contract's committed suite in `expectations_dir` (the repository's
    `expectations/` folder when not given)."""
    suite = suite if suite is not None else load_suite(contract, expectations_dir)
    key = manifest_key(topic_kind, window)
    manifest = json.loads(lake.read_text(key))
    df, integrity = read_hour(lake, contract, topic_kind, manifest)
    result_key, docs_prefix = validation_result_key(topic_kind, window), validation_docs_prefix(topic_kind, window)
    # event times may lie up to the lateness outside the hour, as the offload allows (it quarantines the rest)
    lateness = timedelta(seconds=manifest.get("lateness_seconds") or 0)
    bounds = {WINDOW_START: (window.start - lateness).isoformat(), WINDOW_END: (window.end + lateness).isoformat()}
    quarantined = dict(manifest.get("quarantine_reasons") or {})
    if not len(df) and not integrity and not quarantined:
        return _record_empty(lake, key, manifest, result_key, docs_prefix, suite["name"])
    with tempfile.TemporaryDirectory(prefix="continuum-docs-") as docs_dir:
        result = run_suite(df, suite, bounds, Path(docs_dir), run_name=f"{topic_kind}-{window.start:%Y-%m-%dT%H}")
        critical, warnings = failures(result)
        critical = integrity + critical
        result["meta"]["continuum"] = {"manifest": key, "generation": manifest.get("generation"),
                                       "integrity_failures": integrity, "quarantined": quarantined}
        lake.write_text(result_key, json.dumps(result, indent=2, sort_keys=True, default=str))
        docs_key = _publish_docs(lake, Path(docs_dir), docs_prefix)
    outcome = ValidationOutcome(INVALID if critical else VALID, not critical and not warnings, critical, warnings,
                                result_key, docs_key, len(df), quarantined)
    manifest["status"] = outcome.status
    manifest["validation"] = {**outcome.to_dict(), "suite": suite["name"],
                              "evaluated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    lake.write_text(key, json.dumps(manifest, indent=2, sort_keys=True))
    return outcome


def _record_empty(lake: Lake, key: str, manifest: dict, result_key: str, docs_prefix: str,
                  suite_name: str) -> ValidationOutcome:
    """Record an hour in which nothing arrived: a result with no expectation run, and the manifest's status."""
    outcome = ValidationOutcome(EMPTY, True, result_key=result_key)
    result = {"success": True, "results": [], "statistics": {"evaluated_expectations": 0},
              "meta": {"continuum": {"manifest": key, "generation": manifest.get("generation"), "status": EMPTY,
                                     "reason": "no events arrived in the hour; no expectation was run"}}}
    lake.write_text(outcome.result_key, json.dumps(result, indent=2, sort_keys=True))
    lake.delete_prefix(docs_prefix)  # a rerun of an hour that once held rows leaves no stale pages
    manifest["status"] = EMPTY
    manifest["validation"] = {**outcome.to_dict(), "suite": suite_name,
                              "evaluated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    lake.write_text(key, json.dumps(manifest, indent=2, sort_keys=True))
    return outcome


def read_hour(lake: Lake, contract: Contract, topic_kind: str, manifest: dict) -> tuple[pd.DataFrame, list[str]]:
    """The rows of the files a manifest lists, as one frame, and every way they disagree with it."""
    problems = []
    if manifest.get("content_sha256") != manifest_hash(manifest):
        problems.append("manifest: content does not match its content_sha256")
    frames = []
    for entry in manifest.get("files", []):
        try:
            data = lake.read_bytes(entry["key"])
        except FileNotFoundError:
            problems.append(f"manifest: listed file {entry['key']} is missing")
            continue
        if entry.get("sha256") and hashlib.sha256(data).hexdigest() != entry["sha256"]:
            problems.append(f"manifest: {entry['key']} does not match its sha256")
        frames.append(pq.read_table(io.BytesIO(data)).to_pandas())
    if not frames:
        frames = [codec_for(contract, topic_kind).output_schema.empty_table().to_pandas()]
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if len(df) != manifest.get("rows", len(df)):
        problems.append(f"manifest: says {manifest.get('rows')} rows, its files hold {len(df)}")
    return df, problems


def _publish_docs(lake: Lake, docs_dir: Path, prefix: str) -> str:
    """Replace the hour's docs with GE's freshly built site; returns the key of the validation page."""
    lake.delete_prefix(prefix)
    page = ""
    for path in sorted(p for p in docs_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(docs_dir).as_posix()
        if rel.startswith(_DOCS_SKIP):
            continue
        lake.write_bytes(f"{prefix}/{rel}", path.read_bytes())
        if rel.startswith("validations/") and rel.endswith(".html"):
            page = f"{prefix}/{rel}"
    return page or f"{prefix}/index.html"


def is_valid(manifest: dict | None) -> bool:
    """True only for an hour that has been validated and passed every critical expectation."""
    return bool(manifest) and manifest.get("status") == VALID


def valid_hours(lake: Lake, topic_kind: str, start: datetime, end: datetime) -> list[dict]:
    """Manifests of the valid hours starting in [start, end), oldest first; hours that are invalid, not
    yet validated or not offloaded at all are left out."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("valid_hours needs timezone-aware start and end")
    start, end = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    hour = start.replace(minute=0, second=0, microsecond=0)
    hour += HOUR if hour < start else timedelta(0)
    out = []
    while hour < end:
        try:
            manifest = json.loads(lake.read_text(manifest_key(topic_kind, Window.hour(hour))))
        except FileNotFoundError:
            manifest = None
        if is_valid(manifest):
            out.append(manifest)
        hour += HOUR
    return out
