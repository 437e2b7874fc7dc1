"""The registry audit trail in the real lake (a local folder and the S3 endpoint): concurrent writers
lose nothing, a retried write adds nothing, and a lake's older single-file trail is still read."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone

from ml.audit import new_record_id
from ml.lake.layout import audit_prefix, legacy_audit_key
from ml.registry.aliases import append_audit, audit_log

WRITERS, RECORDS = 8, 25


def test_concurrent_writers_lose_no_record(lake):
    start = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        try:
            start.wait()
            for n in range(RECORDS):
                append_audit(lake, {"model": "m", "type": "promotion", "ref": f"w{writer}-r{n}", "at": ""})
        except BaseException as exc:  # noqa: BLE001 (reported below, with the writer's failure)
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    refs = [r["ref"] for r in audit_log(lake)]
    expected = {f"w{w}-r{n}" for w in range(WRITERS) for n in range(RECORDS)}
    assert set(refs) == expected and len(refs) == len(expected)


def test_a_retried_write_lands_on_its_own_record(lake):
    record = {"id": new_record_id(), "model": "m", "type": "promotion", "from": "1", "to": "2", "at": "t"}
    key = append_audit(lake, dict(record))
    assert append_audit(lake, dict(record)) == key
    assert audit_log(lake) == [record] and lake.list(audit_prefix()) == [key]


def test_the_older_single_file_trail_is_read_first_then_records_in_time_order(lake):
    old = {"model": "m", "type": "promotion", "from": None, "to": "1", "at": "2026-11-01T00:00:00+00:00"}
    lake.write_text(legacy_audit_key(), json.dumps(old) + "\n")
    later = {"id": new_record_id(datetime(2026, 11, 2, tzinfo=timezone.utc)), "model": "m", "type": "rollback",
             "from": "2", "to": "1", "at": "2026-11-02T00:00:00+00:00"}
    earlier = {"id": new_record_id(datetime(2026, 11, 1, 12, tzinfo=timezone.utc)), "model": "m",
               "type": "promotion", "from": "1", "to": "2", "at": "2026-11-01T12:00:00+00:00"}
    append_audit(lake, dict(later))
    append_audit(lake, dict(earlier))
    assert audit_log(lake) == [old, earlier, later]
    assert lake.read_text(legacy_audit_key()) == json.dumps(old) + "\n", "the old file is never rewritten"
