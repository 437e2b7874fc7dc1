"""Hour summaries: exact counts and moments, sketched quantiles, merges that equal one summary of all rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ml.contract import load_contract, model_frame
from ml.drift.summary import EXACT_MAX, NumericSummary, Summary
from ml.simulate.stream import SimConfig, Simulator

CONTRACT = load_contract("machine_telemetry")
HOUR = 3_600_000
T0 = 1_763_596_800_000  # 2025-11-20T00:00Z


@pytest.fixture(scope="module")
def hours() -> list[pd.DataFrame]:
    sim = Simulator(CONTRACT, SimConfig(devices=300, rate=3, seed=9))
    frame = model_frame(CONTRACT, sim.frame(T0, T0 + 3 * HOUR, with_label=False))
    return [frame.iloc[i::3] for i in range(3)]  # three parts of one stream


def test_merged_hours_count_every_row_and_keep_exact_moments(hours):
    whole = pd.concat(hours)
    merged = Summary.merged([Summary.of(CONTRACT, h) for h in hours])
    assert merged.rows == len(whole)
    for name, column in merged.numeric.items():
        values = whole[name].to_numpy()
        finite = values[np.isfinite(values)]
        assert column.count == len(finite) and column.missing == len(values) - len(finite), name
        assert column.mean == pytest.approx(finite.mean(), rel=1e-12) and column.std == pytest.approx(finite.std(), rel=1e-9)
        assert column.sketch is not None and column.sketch.n == len(finite)  # past EXACT_MAX: a sketch
        for q in (0.1, 0.5, 0.9):  # ranks within the sketch's error (k=1000: about 0.25%)
            x = float(np.quantile(finite, q))
            assert abs(column.rank(x) - (finite <= x).mean()) < 0.005, name
    counts = whole["site"].value_counts()
    assert dict(merged.categorical["site"].counts) == {k: int(v) for k, v in counts.items() if v}


def test_up_to_exact_max_values_are_kept_exactly_so_every_run_gives_the_same_summary():
    values = np.random.default_rng(4).normal(size=EXACT_MAX + 1)
    half = EXACT_MAX // 2
    parts = []
    for chunk in (values[:half], values[half:EXACT_MAX]):
        part = NumericSummary()
        part.add(chunk)
        parts.append(part)
    at_edge = NumericSummary()
    for part in parts:
        at_edge.merge(part)
    assert at_edge.sketch is None and at_edge.items()[0].tolist() == sorted(values[:EXACT_MAX].tolist())
    assert at_edge.items()[1].tolist() == [1.0] * EXACT_MAX and at_edge.rank(0.0) == (values[:EXACT_MAX] <= 0).mean()
    again = NumericSummary.from_dict(json.loads(json.dumps(at_edge.to_dict())))
    assert again.to_dict() == at_edge.to_dict() and again.items()[0].tolist() == at_edge.items()[0].tolist()
    one_more = NumericSummary()
    one_more.merge(at_edge)
    one_more.add(values[EXACT_MAX:])
    assert one_more.sketch is not None and one_more.sketch.n == EXACT_MAX + 1 and len(one_more.exact) == 0
    assert one_more.count == EXACT_MAX + 1 and one_more.mean == pytest.approx(values.mean(), rel=1e-12)


def test_missing_and_infinite_values_are_counted_apart(hours):
    frame = hours[0].head(10).copy()
    frame.loc[frame.index[:3], "vibration_mm_s"] = [np.nan, np.inf, -np.inf]
    frame.loc[frame.index[0], "site"] = np.nan
    summary = Summary.of(CONTRACT, frame)
    assert (summary.numeric["vibration_mm_s"].count, summary.numeric["vibration_mm_s"].missing) == (7, 3)
    assert (summary.categorical["site"].count, summary.categorical["site"].missing) == (9, 1)
    assert summary.count("vibration_mm_s") == 7 and summary.rows == 10


def test_a_summary_survives_json_and_merging_leaves_its_parts_unchanged(hours):
    parts = [Summary.of(CONTRACT, h) for h in hours]
    before = [p.to_dict() for p in parts]
    merged = Summary.merged(parts)
    assert [p.to_dict() for p in parts] == before
    again = Summary.from_dict(json.loads(json.dumps(merged.to_dict())))
    assert again.to_dict() == merged.to_dict()
    assert again.numeric["torque_nm"].items()[0].tolist() == merged.numeric["torque_nm"].items()[0].tolist()


def test_bad_input_is_refused_with_the_fix(hours):
    with pytest.raises(ValueError, match="lacks model columns torque_nm"):
        Summary.of(CONTRACT, hours[0].drop(columns=["torque_nm"]))
    other = Summary.of(CONTRACT, hours[0])
    del other.numeric["power_w"]
    with pytest.raises(ValueError, match="summarize them again with one contract"):
        Summary.merged([Summary.of(CONTRACT, hours[1]), other])
    with pytest.raises(ValueError, match="format 0 is not 1"):
        Summary.from_dict({**other.to_dict(), "format": 0})
    with pytest.raises(ValueError, match="nothing to merge"):
        Summary.merged([])
