"""The lake faults, on the fault stack's S3 endpoint while the stream flows: the endpoint stopped in the
middle of an offload's publish, and an offload killed (SIGKILL) between two of its files, each then
retried. A reader's view is checked after the fault and after the retry: the hour is the old one or the
new one, every file its manifest names is whole, each event is there once, and nothing is left over.

    python -m tests.integration.faults_lake BOOTSTRAP TOPIC LAKE_URI ENDPOINT HOUR STOP   # the killed run
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from unittest.mock import patch

import pyarrow.parquet as pq
from confluent_kafka.admin import AdminClient, NewTopic

from ml.lake import STAGING_DIR, Lake
from ml.lake.layout import manifest_key, quarantine_prefix, raw_prefix, summary_key
from ml.lake.window import Window
from tests.integration.fault_stack import BUCKET, ROOT, FaultStack
from tests.integration.fault_stream import Fault
from tests.integration.serving_models import CONTRACT
from tests.integration.serving_topics import events, produce

LATENESS, SKEW = timedelta(minutes=10), timedelta(minutes=30)
FIRST_FILE = "published raw/"  # the publish step after the hour's first file went up


def past_hour(hours_ago: int) -> Window:
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    return Window.hour(now - timedelta(hours=hours_ago))


def fill(bootstrap: str, topic: str, window: Window, n: int, seed: int, minute: int = 0) -> set[str]:
    """n telemetry events stamped within ten minutes of the hour, from `minute` on; returns their ids."""
    records = events(n, seed=seed, start_ms=window.start_ms + minute * 60_000)
    produce(bootstrap, topic, records)
    return {json.loads(v)["event_id"] for _, v, _ in records}


def offload(bootstrap: str, topic: str, lake: Lake, window: Window, progress=None) -> dict:
    from ml.offload import offload_hour, window_consumer

    consumer = window_consumer({"bootstrap.servers": bootstrap})
    try:
        return offload_hour(consumer, lake, CONTRACT, "telemetry", topic, window, LATENESS, max_skew=SKEW,
                            progress=progress)
    finally:
        consumer.close()


def seen(lake: Lake, window: Window) -> dict:
    """The hour as a reader sees it: the event ids of the files its manifest names (none without one),
    files that are not whole (named and missing or changed, or listed and unreadable), and strays (files
    listed that no manifest names, nor its drift summary: left by a run that stopped, and the next run's
    to delete)."""
    from ml.validation import read_hour

    keys = lake.list(raw_prefix("telemetry", window)) + lake.list(quarantine_prefix("telemetry", window))
    unreadable = 0
    for key in (k for k in keys if k.endswith(".parquet")):
        try:
            pq.read_metadata(io.BytesIO(lake.read_bytes(key)))
        except Exception:  # noqa: BLE001 - any file a reader cannot open is a partial one
            unreadable += 1
    mkey = manifest_key("telemetry", window)
    if mkey not in keys:
        return {"ids": [], "partial": unreadable, "strays": len(keys)}
    manifest = json.loads(lake.read_text(mkey))
    df, problems = read_hour(lake, CONTRACT, "telemetry", manifest)
    named = {f["key"] for f in manifest["files"]} | {mkey} | ({manifest["quarantine_file"]["key"]}
                                                            if manifest.get("quarantine_file") else set())
    named.add(summary_key("telemetry", window, manifest["generation"]))  # the drift summary of these files
    return {"ids": list(df["event_id"]), "partial": unreadable + len(problems), "strays": len(set(keys) - named)}


@contextlib.contextmanager
def staging_in(folder: Path):
    """Files an S3 lake stages locally go under `folder` (where leftovers can be counted)."""
    folder.mkdir(parents=True, exist_ok=True)
    with patch.object(tempfile, "tempdir", str(folder)):
        yield


def staged(folder: Path) -> int:
    """Files an S3 lake's writer left staged under `folder` (other temporary files do not count)."""
    return sum(1 for p in (folder / STAGING_DIR).rglob("*") if p.is_file())


def lake_fault(name: str, expected: set[str], after: dict, recovery: float | None, ok: bool, detail: dict) -> Fault:
    """The record of a lake fault from what a reader sees after the retry; `ok`: the fault's own checks."""
    ids = after["ids"]
    lost, dups = len(expected - set(ids)), len(ids) - len(set(ids))
    partial = after["partial"] + detail["partial_at_fault"]
    survived = ok and not lost and not dups and not partial and not after["strays"] and recovery is not None
    return Fault(name, lost, dups, partial, recovery, survived,
                 {**detail, "rows": len(ids), "strays": after["strays"], "extra_ids": len(set(ids) - expected)})


def s3_down_during_offload(stack: FaultStack, topic: str, n: int, workdir: Path) -> Fault:
    """The S3 endpoint stops after the hour's first file went up: the offload must fail (its client's own
    retries run out) with no manifest and nothing staged left; once the endpoint is back, a retry
    writes the hour once. The endpoint (moto) keeps nothing across its restart, so what a reader sees
    after it is the retry's work alone."""
    window = past_hour(5)
    expected = fill(stack.bootstrap, topic, window, n, seed=21)
    lake = Lake(f"s3://{BUCKET}/faults-{uuid.uuid4().hex[:8]}", stack.s3_endpoint)
    stops: list[float] = []

    def stop_endpoint(step: str) -> None:
        if step.startswith(FIRST_FILE) and not stops:
            stops.append(time.monotonic())
            stops.append(stack.down("s3"))

    tmp = workdir / "staging-s3"
    with staging_in(tmp):
        try:
            offload(stack.bootstrap, topic, lake, window, stop_endpoint)
            error = None
        except Exception as exc:  # noqa: BLE001 - how it failed is the finding
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        left = staged(tmp)
        starting = time.monotonic()
        back = stack.up("s3")
        at_back = seen(lake, window)
        offload(stack.bootstrap, topic, lake, window)
        recovery = time.monotonic() - back
    clean = bool(stops) and error is not None and not left and not at_back["ids"]
    return lake_fault("s3_down_during_offload", expected, seen(lake, window), recovery if stops else None, clean,
                      {"error": error, "failed_cleanly": clean, "staged_left": left,
                       "partial_at_fault": at_back["partial"], "start_s": round(back - starting, 2),
                       "stop_s": round(stops[1] - stops[0], 2) if stops else None,
                       "failed_after_s": round(starting - stops[1], 2) if stops else None})


def offload_killed_mid_write(stack: FaultStack, topic: str, n: int, workdir: Path) -> Fault:
    """An hour is offloaded; more of its events arrive; the rerun is killed (SIGKILL) between two of its
    files. Readers must still see the old hour, whole; the retry publishes the new one, each event once."""
    window = past_hour(4)
    lake = Lake(f"s3://{BUCKET}/faults-{uuid.uuid4().hex[:8]}", stack.s3_endpoint)
    old = fill(stack.bootstrap, topic, window, n // 2, seed=31)
    tmp = workdir / "staging-kill"
    with staging_in(tmp):
        offload(stack.bootstrap, topic, lake, window)
    new = old | fill(stack.bootstrap, topic, window, n - n // 2, seed=32, minute=20)
    child = subprocess.run([sys.executable, "-m", "tests.integration.faults_lake", stack.bootstrap, topic, lake.uri,
                            stack.s3_endpoint, window.start.isoformat(), FIRST_FILE], cwd=ROOT, timeout=300,
                           env={**os.environ, "TMPDIR": str(tmp)}, capture_output=True, text=True)
    killed = time.monotonic()
    at_kill = seen(lake, window)
    with staging_in(tmp):
        offload(stack.bootstrap, topic, lake, window)
    recovery = time.monotonic() - killed
    was_killed = child.returncode == -signal.SIGKILL
    old_hour = set(at_kill["ids"]) == old and len(at_kill["ids"]) == len(old)
    left = staged(tmp)
    return lake_fault("offload_killed_mid_write", new, seen(lake, window), recovery if was_killed else None,
                      was_killed and old_hour and not left,
                      {"exit": child.returncode, "stderr": "" if was_killed else child.stderr[-500:],
                       "old_hour_at_kill": old_hour, "strays_at_kill": at_kill["strays"],
                       "partial_at_fault": at_kill["partial"], "staged_left": left})


def offload_topic(stack: FaultStack) -> str:
    topic = f"faults.offload.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": stack.bootstrap})  # kept until its answer is in
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(30)
    return topic


def _killed_run(bootstrap: str, topic: str, uri: str, endpoint: str, hour: str, stop: str) -> None:
    """The offload of a child process that kills itself (SIGKILL: no clean-up runs) at the step `stop`."""
    def progress(step: str) -> None:
        if step.startswith(stop):
            os.kill(os.getpid(), signal.SIGKILL)

    offload(bootstrap, topic, Lake(uri, endpoint), Window.hour(hour), progress)


if __name__ == "__main__":
    _killed_run(*sys.argv[1:7])
