"""Hour summaries in the lake: published with the hour's generation, made once on read for older hours."""

from __future__ import annotations

import io
import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from ml.contract import model_frame
from ml.drift.hours import hour_key, hour_summary, window_sample, window_summary
from ml.drift.summary import Summary
from ml.lake import Lake
from ml.lake.window import Window
from tests.unit.lake_hours import CONTRACT, telemetry

HOURS = [Window.hour("2025-11-20T10"), Window.hour("2025-11-20T11")]


def _rows(lake: Lake, manifest: dict):
    return model_frame(CONTRACT, pd.concat([pq.read_table(io.BytesIO(lake.read_bytes(f["key"]))).to_pandas()
                                            for f in manifest["files"]]))


def test_the_published_summary_is_the_one_read_and_counts_every_row(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    manifest = telemetry(lake, HOURS[0], 3000)
    assert lake.exists(hour_key(manifest))
    for f in manifest["files"]:  # the monitor reads the summary, not the rows
        lake.delete(f["key"])
    summary = hour_summary(lake, CONTRACT, manifest)
    assert summary.rows == manifest["rows"] > 2000


def test_an_hour_without_a_summary_is_summarized_once_on_read(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    manifest = telemetry(lake, HOURS[0], 3000, summarize=False)
    assert not lake.exists(hour_key(manifest))
    first = hour_summary(lake, CONTRACT, manifest)
    expected = Summary.of(CONTRACT, _rows(lake, manifest))
    assert first.rows == expected.rows and first.categorical["site"].counts == expected.categorical["site"].counts
    assert lake.exists(hour_key(manifest))
    for f in manifest["files"]:
        lake.delete(f["key"])
    assert hour_summary(lake, CONTRACT, manifest).to_dict() == first.to_dict()  # stored: not made again


def test_a_new_generation_replaces_the_summary_and_an_unreadable_one_is_made_again(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    old = telemetry(lake, HOURS[0], 2000, seed=1)
    new = telemetry(lake, HOURS[0], 2500, seed=2)
    assert new["generation"] != old["generation"]
    assert not lake.exists(hour_key(old)) and hour_summary(lake, CONTRACT, new).rows == new["rows"]
    lake.write_text(hour_key(new), "{not json")
    assert hour_summary(lake, CONTRACT, new).rows == new["rows"]
    assert json.loads(lake.read_text(hour_key(new)))["rows"] == new["rows"]


def test_a_manifest_that_disagrees_with_its_files_is_refused_with_the_fix(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    manifest = telemetry(lake, HOURS[0], 2000, summarize=False)
    with pytest.raises(ValueError, match="offload the hour again"):
        hour_summary(lake, CONTRACT, {**manifest, "rows": manifest["rows"] + 1})


def test_a_window_merges_its_hours_and_its_sample_draws_the_rows_asked_for(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    manifests = [telemetry(lake, HOURS[0], 1000, seed=3), telemetry(lake, HOURS[1], 3000, seed=4)]
    summary = window_summary(lake, CONTRACT, manifests)
    assert summary.rows == sum(m["rows"] for m in manifests)
    assert window_summary(lake, CONTRACT, []) is None
    sample = window_sample(lake, CONTRACT, manifests, 1000, seed=5)
    shares = [round(1000 * m["rows"] / summary.rows) for m in manifests]
    assert len(sample) == sum(shares) and set(sample.columns) == set(CONTRACT.raw_columns)
