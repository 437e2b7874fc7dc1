"""`continuum-loop alive`: which hour is the first live one, and which alerts count against it."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from tooling.loop.alive import alerts_since, first_live_hour, not_info

UTC = timezone.utc


def test_the_first_live_hour_is_the_one_in_progress_when_the_loop_ended():
    assert first_live_hour(datetime(2026, 12, 5, 6, 58, 46, tzinfo=UTC)) == datetime(2026, 12, 5, 6, tzinfo=UTC)
    assert first_live_hour(datetime(2026, 12, 5, 7, 0, tzinfo=UTC)) == datetime(2026, 12, 5, 7, tzinfo=UTC)


def test_alerts_from_the_loops_end_on_count_and_only_info_passes(tmp_path):
    log, since = tmp_path / "alerts.jsonl", datetime(2026, 12, 5, 7, tzinfo=UTC)
    rows = [{"created_at": "2026-12-05T06:59:59+00:00", "severity": "page", "kind": "task_failed", "title": "before"},
            {"created_at": "2026-12-05T07:00:00+00:00", "severity": "info", "kind": "promoted", "title": "at"},
            {"created_at": "2026-12-05T07:30:00+00:00", "severity": "warn", "kind": "stream_silent", "title": "after"}]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    found = alerts_since(log, since)
    assert [a["title"] for a in found] == ["at", "after"]  # the edge itself counts
    assert not_info(found) == ["warn alert stream_silent: after"]
    assert alerts_since(tmp_path / "none.jsonl", since) == []
