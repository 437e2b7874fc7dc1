"""Rows that break the contract travel with their row number and are rejected downstream with the
reason; options that cannot make a stream fail at once, naming the option and the fix."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import orjson
import pytest

from ml.contract import load_contract
from ml.contract.codec import codec_for
from ml.contract.decode import RawBatch, decode
from ml.contract.records import decode_event
from ml.replay import ROW_FIELD, FileSource, ReplayError, ReplayOptions

WIND = load_contract(str(Path(__file__).resolve().parents[2] / "contracts" / "wind_turbine.yaml"))
HEAD = "measured_at,turbine,wind_speed_ms,rotor_rpm,gearbox_temp_c,yaw_mode,gearbox_fault\n"
GOOD = "2026-03-01T00:{m:02d}:00Z,t-1,5.0,10.0,40.0,auto,0\n"
BAD = {  # row number -> (line, the reason the contract gives)
    1: ("2026-03-01T00:01:00Z,t-1,calm,10.0,40.0,auto,0\n", "wind_speed_ms must be a number (got 'calm')"),
    2: ("2026-03-01T00:02:00Z,t-1,5.0,99.0,40.0,auto,0\n", "rotor_rpm=99.0 above max 30"),
    3: ("2026-03-01T00:03:00Z,t-1,5.0,10.0,40.0,sideways,0\n", "yaw_mode='sideways' not in allowed [auto, manual, storm-park]"),
    4: ("yesterday,t-1,5.0,10.0,40.0,auto,0\n", "measured_at must be an ISO-8601 time (got 'yesterday')"),
    5: ("2026-03-01T00:05:00Z,t-1,inf,10.0,40.0,auto,0\n", "wind_speed_ms must be a number (got 'inf')"),
    6: ("2026-03-01T00:06:00Z,,5.0,10.0,40.0,auto,0\n", "turbine is missing"),
}
BAD_LABELS = {7: "2026-03-01T00:07:00Z,t-1,5.0,10.0,40.0,auto,\n", 8: "2026-03-01T00:08:00Z,t-1,5.0,10.0,40.0,auto,2\n"}


def source(tmp_path, text: str | None = None, **kw) -> FileSource:
    if text is None:
        lines = [BAD[i][0] if i in BAD else BAD_LABELS.get(i, GOOD.format(m=i)) for i in range(10)]
        text = HEAD + "".join(lines)
    path = tmp_path / "wind.csv"
    path.write_text(text)
    opts = {"time_column": "measured_at", "entity_column": "turbine", "label_column": "gearbox_fault",
            "label_delay": timedelta(minutes=5), **kw}
    return FileSource(path, WIND, ReplayOptions(**opts))


def decoded(batch):
    n = len(batch)
    raw = RawBatch(np.zeros(n, np.int32), np.arange(n, dtype=np.int64), np.asarray(batch.timestamps, np.int64),
                   batch.keys, batch.values)
    return decode(codec_for(WIND, batch.topic), raw)


def test_bad_rows_are_carried_and_rejected_downstream_with_their_row_and_reason(tmp_path):
    hours = list(source(tmp_path).hours())
    tele = [orjson.loads(v) for h in hours for v in h.telemetry.values]
    assert sorted(r[ROW_FIELD] for r in tele) == list(range(10))  # nothing dropped
    valid, rejects = zip(*(decoded(h.telemetry) for h in hours if len(h.telemetry)))
    kept = {r for t in valid for r in t.column("reading_id").to_pylist()}
    ids = {r[ROW_FIELD]: r["reading_id"] for r in tele}
    assert kept == {ids[i] for i in range(10) if i not in BAD}
    found = {orjson.loads(v)[ROW_FIELD]: reason for t in rejects
             for v, reason in zip(t.column("value").to_pylist(), t.column("reason").to_pylist())}
    assert found == {row: reason for row, (_, reason) in BAD.items()}
    for row, (_, reason) in BAD.items():  # the sidecar's per-message path gives the same reason
        with pytest.raises(Exception, match=reason.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
            decode_event(WIND, next(v for h in hours for v in h.telemetry.values if orjson.loads(v)[ROW_FIELD] == row))
    assert {r for h in hours for r in h.events.column("reading_id").to_pylist()} == kept
    assert hours[0].events.schema.names == WIND.arrow_schema().names
    predicted = [h.rejects for h in hours]
    assert {(r.source_row, r.reason) for p in predicted for r in p[p.topic == "telemetry"].itertuples()} == \
        {(row, reason) for row, (_, reason) in BAD.items()}


def test_a_missing_or_wrong_label_is_carried_to_the_outcomes_quarantine(tmp_path):
    hours = list(source(tmp_path).hours())
    outs = [orjson.loads(v) for h in hours for v in h.outcomes.values]
    assert sorted(o[ROW_FIELD] for o in outs) == list(range(10))
    rejects = [decoded(h.outcomes)[1] for h in hours if len(h.outcomes)]
    found = {orjson.loads(v)[ROW_FIELD]: reason for t in rejects
             for v, reason in zip(t.column("value").to_pylist(), t.column("reason").to_pylist())}
    assert found == {7: "gearbox_fault is missing", 8: "gearbox_fault must be one of 0..1"}
    labelled = {r for h in hours for r in h.labels.column("reading_id").to_pylist()}
    assert labelled == {o["reading_id"] for o in outs if o[ROW_FIELD] not in (7, 8)}
    predicted = {(r.source_row, r.reason) for h in hours for r in h.rejects[h.rejects.topic == "outcomes"].itertuples()}
    assert predicted == set(found.items())


def test_an_unreadable_time_travels_in_the_hour_of_the_row_before_it(tmp_path):
    hours = list(source(tmp_path).hours())
    stamps = {orjson.loads(v)[ROW_FIELD]: t for h in hours for v, t in zip(h.telemetry.values, h.telemetry.timestamps)}
    assert stamps[4] == stamps[3]


@pytest.mark.parametrize("options, match", [
    ({}, r"time_column / rows_per_hour: give exactly one"),
    ({"time_column": "measured_at", "rows_per_hour": 10}, r"time_column / rows_per_hour: give exactly one"),
    ({"rows_per_hour": 10}, r"start: rows_per_hour needs the first row's event time"),
    ({"rows_per_hour": 0, "start": "2026-03-01T00:00Z"}, r"rows_per_hour: must be a whole number >= 1"),
    ({"rows_per_hour": 10, "start": "2026-03-01T00:30Z"}, r"start: must be on the hour .* e\.g\. 2026-03-01T00:00:00\+00:00"),
    ({"time_column": "measured_at", "start": "2026-03-01T00:00Z"}, r"start: only with rows_per_hour"),
    ({"time_column": "when"}, r"time_column: the file has no column 'when' \(its columns: measured_at, turbine"),
    ({"time_column": "measured_at", "label_column": "fault"}, r"label_column: the file has no column 'fault'"),
    ({"time_column": "measured_at", "entity_column": "machine"}, r"entity_column: the file has no column 'machine'"),
    ({"time_column": "measured_at", "from_time": "2026-03-01T01:00Z", "to_time": "2026-03-01T01:00Z"},
     r"from_time / to_time: from_time must be before to_time"),
    ({"time_column": "measured_at", "from_time": "soon"}, r"from_time: cannot read 'soon' as a time; use ISO-8601"),
    ({"time_column": "measured_at", "label_delay": timedelta(minutes=-1)}, r"label_delay: must be a duration >= 0"),
    ({"time_column": "measured_at", "names": ("a", "b")}, r"names: the file has 7 columns and only 2 names"),
    ({"time_column": "measured_at", "entity": "t-1", "entity_column": "turbine"}, r"entity / entity_column: give one"),
])
def test_bad_options_name_the_option_and_the_fix(tmp_path, options, match):
    path = tmp_path / "wind.csv"
    path.write_text(HEAD + GOOD.format(m=0))
    with pytest.raises(ReplayError, match=match):
        FileSource(path, WIND, ReplayOptions(**{"label_column": "gearbox_fault", **options}))


def test_a_missing_feature_column_or_file_is_named(tmp_path):
    path = tmp_path / "wind.csv"
    path.write_text(HEAD.replace("rotor_rpm", "rpm") + "2026-03-01T00:00Z,t-1,5.0,10.0,40.0,auto,0\n")
    with pytest.raises(ReplayError, match=r"features\.rotor_rpm: the file has no column 'rotor_rpm'"):
        FileSource(path, WIND, ReplayOptions(time_column="measured_at", label_column="gearbox_fault"))
    with pytest.raises(ReplayError, match=r"file: no file .*nowhere\.csv"):
        FileSource(tmp_path / "nowhere.csv", WIND, ReplayOptions(time_column="measured_at"))
    with pytest.raises(ReplayError, match=r"file: wind\.json: unknown format; give a \.csv .* or \.parquet file"):
        (tmp_path / "wind.json").write_text("{}")
        FileSource(tmp_path / "wind.json", WIND, ReplayOptions(time_column="measured_at"))
    with pytest.raises(ReplayError, match=r"package 'no_such_package_x' is not installed"):
        FileSource("pkg:no_such_package_x/data.csv", WIND, ReplayOptions(time_column="measured_at"))
    path.write_text(HEAD + GOOD.format(m=0))
    with pytest.raises(ReplayError, match=r"time_column: no value of column 'turbine' reads as an ISO-8601 time"):
        FileSource(path, WIND, ReplayOptions(time_column="turbine", label_column="gearbox_fault"))
