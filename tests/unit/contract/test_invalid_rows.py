"""The Arrow rules of the hot paths flag exactly the rows check_records rejects, for any contract."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ml.contract import check_records, invalid_rows, load_contract
from ml.contract.model import CATEGORICAL
from ml.simulate.stream import SimConfig, Simulator


def _corrupt(contract, df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Break about one row in five, each in one of the ways a typed row can break the contract."""
    df = df.copy()
    for i in np.flatnonzero(rng.random(len(df)) < 0.2):
        feat = contract.features[rng.integers(len(contract.features))]
        how = rng.integers(5)
        if how == 0:
            df.loc[i, contract.event_id if rng.random() < 0.5 else contract.entity_key] = rng.choice(["", None])
        elif how == 1:
            df.loc[i, contract.event_time] = pd.NaT
        elif how == 2:
            df.loc[i, feat.name] = None if feat.kind == CATEGORICAL else np.nan
        elif feat.kind == CATEGORICAL:
            df.loc[i, feat.name] = "not-a-known-value"
        else:
            span = (feat.max or 0) - (feat.min or 0) or 1.0
            df.loc[i, feat.name] = rng.choice([(feat.max or 0) + span, (feat.min or 0) - span, np.inf, -np.inf])
    return df


@pytest.mark.parametrize("name", ["machine_telemetry", "tests/contracts/wind_turbine.yaml"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_arrow_rules_agree_with_check_records(name, seed):
    contract = load_contract(name)
    clean = Simulator(contract, SimConfig(devices=30, rate=2.0, seed=seed)).frame(0, 600_000, with_label=False)
    df = _corrupt(contract, clean, np.random.default_rng(seed))
    schema = contract.arrow_schema()
    table = pa.Table.from_pandas(df[schema.names], schema=pa.schema([f.with_nullable(True) for f in schema]),
                                 preserve_index=False)
    flagged = invalid_rows(contract, table)
    _, rejects = check_records(contract, table.to_pandas())
    expected = np.zeros(len(df), dtype=bool)
    expected[rejects.index.to_numpy()] = True
    assert expected.sum() > 0.1 * len(df), "the corruption must really break rows"
    assert np.array_equal(flagged, expected), np.flatnonzero(flagged != expected)[:10]


def test_clean_rows_are_not_flagged():
    contract = load_contract("machine_telemetry")
    df = Simulator(contract, SimConfig(devices=30, rate=2.0, seed=9)).frame(0, 600_000, with_label=False)
    table = pa.Table.from_pandas(df[contract.arrow_schema().names], preserve_index=False)
    assert not invalid_rows(contract, table).any()
