"""Where every dataset lives in the lake: one function per path, as a data catalog names each dataset once.

    raw/<topic>/dt=YYYY-MM-DD/hour=HH/part-<partition>-<first>-<last>.<generation>.parquet + _manifest.json
    raw/telemetry/dt=.../hour=.../_summary.<generation>.json    the hour's drift summary (sketches, counts)
    quarantine/<topic>/dt=.../hour=.../rejects.<generation>.parquet
    validation/<topic>/dt=.../hour=.../result.json + docs/
    reports/drift/<run>/report.html + summary.json     reports/loop/index.html
    reports/daily/dt=YYYY-MM-DD/model=<version>.json + .html
    predictions_batch/model=<version>/dt=YYYY-MM-DD/part-0.parquet
    decisions/<run>.json
    registry/audit/<record id>.json (and the older registry/audit.jsonl)   registry/verdicts/<model>/<version>.json
    registry/references/<model>/<version>/reference.json + reference.<generation>.parquet
    registry/rolled_back/<model>/<model file sha256>.json (a model rolled back after its bake window)
    replay/clock.json (only while a paced replay runs: the event time the loop stands at)

Writers and readers both take their keys from here, so a path changes in one place. An hour is
published by its manifest: readers start there, and an hour without one is not offloaded.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timezone

from ml.lake.window import Window

_RAW, _QUARANTINE, _VALIDATION, _DECISIONS = "raw", "quarantine", "validation", "decisions"
_REPORTS, _REGISTRY, _BATCH_PREDICTIONS = "reports", "registry", "predictions_batch"
_REPLAY = "replay"
_MANIFEST = "_manifest.json"
_DRIFT_REPORT = "report.html"


def roots() -> tuple[str, ...]:
    """Every top-level folder the product writes (what emptying the lake deletes)."""
    return _RAW, _QUARANTINE, _VALIDATION, _DECISIONS, _REPORTS, _REGISTRY, _BATCH_PREDICTIONS, _REPLAY


# --- one topic's hours: raw rows, their manifest, the quarantine, the validation ----------------------
def raw_prefix(topic_kind: str, window: Window | None = None) -> str:
    """The raw rows of a topic (`raw/<topic>`), or of one of its hours."""
    return f"{_RAW}/{topic_kind}/{window.partition_path}" if window is not None else f"{_RAW}/{topic_kind}"


def part_key(topic_kind: str, window: Window, partition: int, first: int, last: int, generation: str) -> str:
    """One Kafka partition's rows of an hour, offsets `first`..`last`, in a published generation."""
    return f"{raw_prefix(topic_kind, window)}/part-{partition}-{first}-{last}.{generation}.parquet"


def manifest_key(topic_kind: str, window: Window) -> str:
    """An hour's manifest: the files it holds, their checksums, its validation status."""
    return f"{raw_prefix(topic_kind, window)}/{_MANIFEST}"


def summary_key(topic_kind: str, window: Window, generation: str) -> str:
    """The drift summary of an hour's published generation (`ml.drift.summary`): named after the
    generation, so a summary always describes the files its manifest lists."""
    return f"{raw_prefix(topic_kind, window)}/_summary.{generation}.json"


def is_manifest_key(key: str) -> bool:
    return key.endswith(f"/{_MANIFEST}")


def partition_hour(key: str) -> datetime:
    """The hour a key under `dt=YYYY-MM-DD/hour=HH` belongs to."""
    parts = dict(p.split("=", 1) for p in key.split("/") if "=" in p)
    return datetime.strptime(f"{parts['dt']}T{parts['hour']}", "%Y-%m-%dT%H").replace(tzinfo=timezone.utc)


def manifest_hash(manifest: dict) -> str:
    """Hash of what the hour holds (files, counts, offsets), not of its later validation status."""
    content = {k: v for k, v in manifest.items() if k not in ("status", "validation", "content_sha256")}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def quarantine_prefix(topic_kind: str, window: Window) -> str:
    """An hour's rejected records, with the reason for each."""
    return f"{_QUARANTINE}/{topic_kind}/{window.partition_path}"


def rejects_key(topic_kind: str, window: Window, generation: str) -> str:
    return f"{quarantine_prefix(topic_kind, window)}/rejects.{generation}.parquet"


def validation_prefix(topic_kind: str, window: Window) -> str:
    """Great Expectations' verdict on an hour: its result and Data Docs."""
    return f"{_VALIDATION}/{topic_kind}/{window.partition_path}"


def validation_result_key(topic_kind: str, window: Window) -> str:
    return f"{validation_prefix(topic_kind, window)}/result.json"


def validation_docs_prefix(topic_kind: str, window: Window) -> str:
    return f"{validation_prefix(topic_kind, window)}/docs"


# --- monitoring: drift reports, decisions, the loop report --------------------------------------------
def drift_report_prefix(run: str | None = None) -> str:
    """Every drift report (`reports/drift`), or one monitor run's."""
    return f"{_REPORTS}/drift/{run}" if run is not None else f"{_REPORTS}/drift"


def drift_report_key(run: str) -> str:
    """A run's Evidently report, HTML for a person to read."""
    return f"{drift_report_prefix(run)}/{_DRIFT_REPORT}"


def drift_summary_key(run: str) -> str:
    """A run's drift result as JSON, for the policy and the alerts."""
    return f"{drift_report_prefix(run)}/summary.json"


def is_drift_report_key(key: str) -> bool:
    return key.endswith(f"/{_DRIFT_REPORT}")


def decisions_prefix() -> str:
    return _DECISIONS


def decision_key(run_id: str) -> str:
    """A monitor run's trigger decision, with its evidence."""
    return f"{_DECISIONS}/{run_id}.json"


def loop_report_key() -> str:
    """The loop report page, redrawn by every monitor run."""
    return f"{_REPORTS}/loop/index.html"


# --- batch scoring -------------------------------------------------------------------------------------
def batch_predictions_key(version: str, day: date) -> str:
    """A version's scores of one day's events."""
    return f"{_BATCH_PREDICTIONS}/model={version}/dt={day:%Y-%m-%d}/part-0.parquet"


def daily_report_key(day: date, version: str, ext: str) -> str:
    """A version's summary of one day, as `json` or `html`."""
    return f"{_REPORTS}/daily/dt={day:%Y-%m-%d}/model={version}.{ext}"


# --- the registry's records: alias moves and verdicts --------------------------------------------------
def audit_prefix() -> str:
    """The audit trail: one object per alias move."""
    return f"{_REGISTRY}/audit"


def audit_record_key(record_id: str) -> str:
    """The audit record with this id."""
    if not record_id or "/" in record_id:
        raise ValueError(f"an audit record id must be a non-empty name without '/', got {record_id!r}")
    return f"{audit_prefix()}/{record_id}.json"


def legacy_audit_key() -> str:
    """The older single-file audit trail, still read where a lake has one."""
    return f"{_REGISTRY}/audit.jsonl"


def verdict_key(model: str, version: str | int) -> str:
    """The gates' verdict on a registered version, its digest and its approval."""
    return f"{_REGISTRY}/verdicts/{model}/{version}.json"


def rolled_back_key(model: str, digest: str) -> str:
    """The mark of a model file rolled back after its bake window: whatever version carries it, it is not
    promoted again."""
    if not digest or "/" in digest:
        raise ValueError(f"a rolled-back mark is named by the model file's sha256, got {digest!r}")
    return f"{_REGISTRY}/rolled_back/{model}/{digest}.json"


def reference_key(model: str, version: str | int, generation: str) -> str:
    """The rows a version's drift reference gained from the hours it served, in one generation."""
    return f"{_REGISTRY}/references/{model}/{version}/reference.{generation}.parquet"


def reference_index_key(model: str, version: str | int) -> str:
    """Which generation of a version's served reference is current, and where each hour of the day came from."""
    return f"{_REGISTRY}/references/{model}/{version}/reference.json"


def replay_clock_key() -> str:
    """The paced replay's clock (ml.clock): present only while a replay drives the loop."""
    return f"{_REPLAY}/clock.json"
