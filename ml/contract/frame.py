"""The one feature function: decoded events in, the model's input frame out.

Training, batch scoring and the serving sidecar all call `model_frame`, so derived features and
categorical codes can never disagree between them. Categoricals get the contract's fixed categories,
so XGBoost (`enable_categorical=True`) sees the same codes for the same values everywhere.

`model_matrix` is the same function for a few decoded events (the sidecar at low traffic), without
pandas' fixed cost of milliseconds per call: the model frame as float32 with categoricals as their
codes, equal to `model_frame` read as codes (its tests check that they agree).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.contract.model import CATEGORICAL, Contract, ContractError, Derived


def model_frame(contract: Contract, df: pd.DataFrame) -> pd.DataFrame:
    """Return exactly `contract.model_columns` for the rows of `df`: numerics as float64 (NaN for null),
    categoricals as pandas Categorical with the contract's categories (unknown values become NaN)."""
    missing = [name for name in contract.raw_columns if name not in df.columns]
    if missing:
        raise ContractError(f"features.{missing[0]}: column missing from the frame (missing: {', '.join(missing)})")
    out: dict[str, pd.Series | pd.Categorical] = {}
    numeric: dict[str, np.ndarray] = {}
    for feat in contract.features:
        col = df[feat.name]
        if feat.kind == CATEGORICAL:
            out[feat.name] = pd.Categorical(col, categories=list(contract.categories(feat.name)))
        else:
            values = pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            numeric[feat.name] = out[feat.name] = values
    for derived in contract.derived:
        numeric[derived.name] = out[derived.name] = derive(derived, [numeric[name] for name in derived.inputs])
    return pd.DataFrame(out, index=df.index, columns=contract.model_columns)


def model_matrix(contract: Contract, events) -> np.ndarray:
    """`model_frame` as one float32 matrix in `contract.model_columns` order, categoricals as their contract
    codes (NaN for a null or unknown value), for decoded events: a list of `decode_event` dicts (NaN or
    None for a null) or an Arrow table of checked records (`check_records`, `ml.contract.decode`)."""
    import pyarrow as pa

    arrow = isinstance(events, pa.Table)
    out = np.empty((events.num_rows if arrow else len(events), len(contract.model_columns)), dtype=np.float32)
    numeric: dict[str, np.ndarray] = {}
    for j, feat in enumerate(contract.features):
        if feat.kind == CATEGORICAL:
            categories = contract.categories(feat.name)
            if arrow:
                import pyarrow.compute as pc

                codes = pc.index_in(events[feat.name], value_set=pa.array(categories, pa.string()))
                out[:, j] = codes.to_numpy(zero_copy_only=False)
            else:
                lookup = {value: float(i) for i, value in enumerate(categories)}
                out[:, j] = [lookup.get(row[feat.name], np.nan) for row in events]
        else:
            if arrow:
                values = events[feat.name].cast(pa.float64()).to_numpy(zero_copy_only=False)
            else:
                values = np.array([row[feat.name] for row in events], dtype=np.float64)
            numeric[feat.name] = values
            out[:, j] = values
    for j, derived in enumerate(contract.derived, start=len(contract.features)):
        numeric[derived.name] = derive(derived, [numeric[name] for name in derived.inputs])
        out[:, j] = numeric[derived.name]
    return out


def derive(derived: Derived, inputs: list[np.ndarray]) -> np.ndarray:
    """Compute one derived feature from its float inputs; a division by zero gives NaN, not inf."""
    first, rest = inputs[0], inputs[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        if derived.op == "difference":
            result = first - rest[0]
        elif derived.op == "ratio":
            result = np.where(rest[0] == 0, np.nan, first / rest[0])
        elif derived.op == "product":
            result = np.prod(np.vstack(inputs), axis=0)
        else:
            result = np.sum(np.vstack(inputs), axis=0)
    return result * derived.scale if derived.scale != 1.0 else result
