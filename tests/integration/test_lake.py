"""The lake behaves the same locally and on a real S3 endpoint, and never shows a half-written object."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest


def test_write_read_list_delete(lake):
    lake.write_text("raw/telemetry/dt=2026-11-22/hour=13/_manifest.json", '{"rows": 3}')
    lake.write_bytes("raw/telemetry/dt=2026-11-22/hour=13/part-0-0-2.parquet", b"PAR1")
    lake.write_bytes("raw/outcomes/dt=2026-11-22/hour=13/part-0-0-0.parquet", b"x")

    assert lake.read_text("raw/telemetry/dt=2026-11-22/hour=13/_manifest.json") == '{"rows": 3}'
    assert lake.list("raw/telemetry") == [
        "raw/telemetry/dt=2026-11-22/hour=13/_manifest.json",
        "raw/telemetry/dt=2026-11-22/hour=13/part-0-0-2.parquet",
    ]
    assert len(lake.list()) == 3
    assert lake.exists("raw/outcomes/dt=2026-11-22/hour=13/part-0-0-0.parquet")

    assert lake.delete_prefix("raw/telemetry") == 2
    assert lake.list("raw/telemetry") == []
    assert not lake.exists("raw/telemetry/dt=2026-11-22/hour=13/_manifest.json")
    with pytest.raises(FileNotFoundError, match="no such lake object"):
        lake.read_bytes("raw/telemetry/dt=2026-11-22/hour=13/_manifest.json")


def test_overwrite_replaces_whole_object(lake):
    lake.write_bytes("a/b.bin", b"old" * 1000)
    lake.write_bytes("a/b.bin", b"new")
    assert lake.read_bytes("a/b.bin") == b"new"


def test_a_failed_write_publishes_nothing_and_keeps_the_old_object(lake):
    lake.write_bytes("reports/x.json", b"v1")
    with pytest.raises(RuntimeError):
        with lake.open_write("reports/x.json") as fh:
            fh.write(b"v2-partial")
            raise RuntimeError("writer crashed")
    with pytest.raises(RuntimeError):
        with lake.open_write("reports/new.json") as fh:
            fh.write(b"partial")
            raise RuntimeError("writer crashed")
    assert lake.read_bytes("reports/x.json") == b"v1"
    assert lake.list("reports") == ["reports/x.json"]


def test_a_killed_writer_leaves_nothing_visible(lake):
    """kill -9 in the middle of a large streamed write: no object, no listed temp file."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from ml.lake import Lake
        lake = Lake({lake.uri!r}, {getattr(lake, '_s3', None) and lake._s3.meta.endpoint_url!r})
        with lake.open_write("raw/t/dt=2026-11-22/hour=01/part-0-0-9.parquet") as fh:
            fh.write(b"x" * 4_000_000)
            print("writing", flush=True)
            time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"writing"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
    assert lake.list() == []
    assert not lake.exists("raw/t/dt=2026-11-22/hour=01/part-0-0-9.parquet")


def test_rejects_keys_that_escape_the_root(lake):
    from ml.lake import LakeError

    with pytest.raises(LakeError):
        lake.write_bytes("../outside", b"x")
