"""A recorded file as a stream: event-time order, hours, slices at their edges, label delay, stable ids."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from ml.contract import load_contract
from ml.contract.codec import codec_for
from ml.contract.decode import RawBatch, decode
from ml.replay import ROW_FIELD, FileSource, ReplayOptions

WIND = load_contract(str(Path(__file__).resolve().parents[2] / "contracts" / "wind_turbine.yaml"))
HOUR_MS = 3_600_000
T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)

# file order is not time order; one time has an offset, one has none (UTC); hour 02:00 has no event
ROWS = """measured_at,turbine,wind_speed_ms,rotor_rpm,gearbox_temp_c,yaw_mode,farm,gearbox_fault
2026-03-01T01:10:00Z,t-2,7.5,12.0,55.0,auto,north,0
2026-03-01T00:05:00Z,t-1,5.25,9.5,40.0,manual,north,1
2026-03-01T03:59:59.999Z,t-1,0.05949346797240439,1.0,,auto,south,0
2026-03-01T02:00:00+01:00,t-3,6.0,11.0,50.0,storm-park,north,1
2026-03-01 00:30:00,t-2,8.0,13.0,60.0,auto,south,0
"""


def csv(tmp_path, text=ROWS, name="wind.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def records(batches) -> list[dict]:
    return [orjson.loads(v) for b in batches for v in b.values]


def timed(**kw) -> ReplayOptions:
    return ReplayOptions(time_column="measured_at", entity_column="turbine", label_column="gearbox_fault", **kw)


def test_time_column_gives_event_time_order_hours_and_kafka_timestamps(tmp_path):
    hours = list(FileSource(csv(tmp_path), WIND, timed(label_delay=timedelta(minutes=30))).hours())
    assert [h.start for h in hours] == [T0 + timedelta(hours=i) for i in range(5)]  # 04:00: the last outcome
    assert [[r[ROW_FIELD] for r in records([h.telemetry])] for h in hours] == [[1, 4], [3, 0], [], [2], []]
    tele = records(h.telemetry for h in hours)
    assert [r["measured_at"] for r in tele][:3] == ["2026-03-01T00:05:00.000Z", "2026-03-01T00:30:00.000Z",
                                                    "2026-03-01T01:00:00.000Z"]
    stamps = [t for h in hours for t in h.telemetry.timestamps]
    assert stamps == [int(pd.Timestamp(r["measured_at"]).value // 1_000_000) for r in tele]
    assert [k for h in hours for k in h.telemetry.keys] == [b"t-1", b"t-2", b"t-3", b"t-2", b"t-1"]
    assert tele[2]["yaw_mode"] == "storm-park" and tele[-1]["gearbox_temp_c"] is None


def test_values_decode_exactly_as_the_file_wrote_them(tmp_path):
    hour = [h for h in FileSource(csv(tmp_path), WIND, timed()).hours() if len(h.telemetry)][-1]
    n = len(hour.telemetry)
    raw = RawBatch(np.zeros(n, np.int32), np.arange(n, dtype=np.int64), np.asarray(hour.telemetry.timestamps),
                   hour.telemetry.keys, hour.telemetry.values)
    valid, rejects = decode(codec_for(WIND, "telemetry"), raw)
    assert rejects.num_rows == 0
    assert valid.column("wind_speed_ms").to_pylist() == [0.05949346797240439]


def test_rows_per_hour_spreads_each_hour_evenly(tmp_path):
    text = "wind_speed_ms,rotor_rpm,gearbox_temp_c,yaw_mode,gearbox_fault\n" + "5.0,10.0,40.0,auto,0\n" * 10
    options = ReplayOptions(rows_per_hour=4, start="2026-03-01T00:00Z", label_delay=timedelta(0), label_column="gearbox_fault")
    hours = list(FileSource(csv(tmp_path, text), WIND, options).hours())
    assert [len(h.telemetry) for h in hours] == [4, 4, 2]
    expected = [T0 + timedelta(minutes=15 * i) for i in range(10)]
    assert [t for h in hours for t in h.telemetry.timestamps] == [int(t.timestamp() * 1000) for t in expected]
    assert {r["turbine"] for r in records(h.telemetry for h in hours)} == {"wind"}  # no column: the file's name
    named = FileSource(csv(tmp_path, text), WIND, replace(options, entity="t-7"))
    assert {k for h in named.hours() for k in h.telemetry.keys} == {b"t-7"}


def test_slice_keeps_from_and_drops_to_at_their_edges(tmp_path):
    full = FileSource(csv(tmp_path), WIND, timed())
    ids = {r[ROW_FIELD]: r["reading_id"] for r in records(h.telemetry for h in full.hours())}
    part = FileSource(csv(tmp_path), WIND, timed(from_time="2026-03-01T00:30Z", to_time="2026-03-01T03:59:59.999Z"))
    got = records(h.telemetry for h in part.hours())
    assert {r["reading_id"] for r in got} == {ids[4], ids[3], ids[0]}  # 00:30 in; 03:59:59.999 out; 00:05 out
    assert len(part) == 3
    assert {r["reading_id"] for r in records(h.outcomes for h in part.hours())} == {ids[4], ids[3], ids[0]}
    assert next(part.hours()).start == T0


def test_outcomes_follow_after_the_label_delay_in_the_hour_they_are_observed(tmp_path):
    source = FileSource(csv(tmp_path), WIND, timed(label_delay=timedelta(minutes=40)))
    hours = list(source.hours())
    events = {r["reading_id"]: pd.Timestamp(r["measured_at"]) for r in records(h.telemetry for h in hours)}
    for hour in hours:
        for value, stamp in zip(hour.outcomes.values, hour.outcomes.timestamps):
            out = orjson.loads(value)
            observed = pd.Timestamp(out["confirmed_at"])
            assert observed == events[out["reading_id"]] + timedelta(minutes=40)
            assert int(observed.value // 1_000_000) == stamp and hour.start <= observed < hour.start + timedelta(hours=1)
    assert {orjson.loads(v)["reading_id"] for h in hours for v in h.outcomes.values} == set(events)
    first = {orjson.loads(v)["reading_id"] for v in hours[0].outcomes.values}
    assert first == {r["reading_id"] for r in records([hours[0].telemetry]) if r[ROW_FIELD] == 1}  # 00:05 -> 00:45
    default = list(FileSource(csv(tmp_path), WIND, timed()).hours())  # the contract's expected delay: 120 min
    assert orjson.loads(default[2].outcomes.values[0])["confirmed_at"] == "2026-03-01T02:05:00.000Z"


def test_event_ids_are_stable_across_runs_and_slices_and_differ_by_row(tmp_path):
    def ids(**kw):
        return {r[ROW_FIELD]: r["reading_id"] for r in records(h.telemetry for h in FileSource(csv(tmp_path), WIND, timed(**kw)).hours())}

    first, again = ids(), ids()
    assert first == again and len(set(first.values())) == 5
    assert ids(from_time="2026-03-01T01:00Z") == {row: first[row] for row in (0, 3, 2)}
    doubled = ROWS + ROWS.splitlines()[1] + "\n"  # the same values again, as row 5
    other = {r[ROW_FIELD]: r["reading_id"] for r in records(h.telemetry for h in FileSource(csv(tmp_path, doubled, "d.csv"), WIND, timed()).hours())}
    assert other[5] != other[0]


def test_parquet_with_a_zoned_time_column_and_normalized_column_names(tmp_path):
    frame = pd.DataFrame({
        "Measured At": pd.to_datetime(["2026-03-01T00:10:00+02:00", "2026-03-01T00:20:00+02:00"]),
        "Turbine": ["t-9", "t-8"], "Wind Speed MS": [3.5, 4.5], "rotor-rpm": [8.0, 9.0],
        "gearbox temp c": [30.0, None], "yaw_mode": ["auto", "manual"], "Gearbox Fault": [True, False],
    })
    path = tmp_path / "wind.parquet"
    frame.to_parquet(path)
    options = ReplayOptions(time_column="Measured At", entity_column="Turbine")
    hours = list(FileSource(path, WIND, options).hours())
    tele = records(h.telemetry for h in hours)
    assert [(r["turbine"], r["measured_at"], r["wind_speed_ms"]) for r in tele] == [
        ("t-9", "2026-02-28T22:10:00.000Z", 3.5), ("t-8", "2026-02-28T22:20:00.000Z", 4.5)]
    assert [orjson.loads(v)["gearbox_fault"] for h in hours for v in h.outcomes.values] == [1, 0]
    assert all(len(h.rejects) == 0 for h in hours)


def test_replay_by_spans_sends_each_event_and_outcome_once_in_time_order_shifted_by_whole_days(tmp_path):
    """A paced driver asks span by span, its spans offset from the hours (by the offload's lateness)."""
    delay = timedelta(minutes=30)
    whole = FileSource(csv(tmp_path), WIND, timed(label_delay=delay))
    shifted = FileSource(csv(tmp_path), WIND, timed(label_delay=delay), shift=timedelta(days=2))
    assert shifted.span() == tuple(t + timedelta(days=2) for t in whole.span())
    ms = lambda t: int(t.timestamp() * 1000)  # noqa: E731
    base, telemetry, outcomes = T0 + timedelta(days=2), [], []
    cuts = [base, base + timedelta(minutes=10), base + timedelta(hours=1, minutes=10),
            base + timedelta(hours=3, minutes=59, seconds=59, milliseconds=999), base + timedelta(hours=4)]
    for a, b in zip(cuts, cuts[1:]):
        for batch in shifted.replay(ms(a), ms(b), ms(b)):
            (telemetry if batch.topic == "telemetry" else outcomes).append((ms(a), ms(b), batch))
            assert all(ms(a) <= t < ms(b) for t in batch.timestamps), "every record inside its span"
    for _ in shifted.replay(ms(cuts[-1]), ms(cuts[-1]), ms(cuts[-1] + timedelta(hours=1))):
        outcomes.append((0, 0, _))
    sent = [r[ROW_FIELD] for _, _, b in telemetry for r in records([b])]
    assert sorted(sent) == [0, 1, 2, 3, 4] and len(set(sent)) == 5
    labelled = [r[ROW_FIELD] for _, _, b in outcomes for r in records([b])]
    assert sorted(labelled) == [0, 1, 2, 3, 4] and len(set(labelled)) == 5
    # the same ids as unshifted, each event 2 days later
    key = WIND.event_id
    assert {r[key] for _, _, b in telemetry for r in records([b])} == {
        r[key] for h in whole.hours() for r in records([h.telemetry])}
    stamps = [t for _, _, b in telemetry for t in b.timestamps]
    assert stamps == sorted(stamps) and stamps[0] == ms(T0 + timedelta(days=2, minutes=5))
