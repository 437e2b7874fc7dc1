"""The final fit of a spooled window: hour files fed to XGBoost batch by batch, or to a Dask cluster.

    booster = fit_iterated(spool, contract, params, max_rounds, extmem=False)   # QuantileDMatrix from a DataIter
    booster = fit_iterated(spool, contract, params, max_rounds, extmem=True)    # ExtMemQuantileDMatrix, cache on disk
    booster = fit_on_dask("tcp://host:8786", spool, contract, params, max_rounds)

In this process the training and validation rows reach XGBoost through a `DataIter`, one hour file at
a time: XGBoost bins them as they pass, so the process holds the binned matrix and one hour, never the
window. Where even the binned matrix is too big, `ExtMemQuantileDMatrix` keeps its pages on disk beside
the spool. On Dask each hour's rows are sent to the cluster as partitions spread over its workers (this
process holds one hour at a time) and `xgboost.dask` trains there.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xgboost as xgb

from ml.contract import Contract, model_frame
from ml.train.fit import BASE_PARAMS, EARLY_STOPPING_ROUNDS
from ml.train.spool import TRAIN, VALID, Spool


class HourBatches(xgb.DataIter):
    """The rows of one part (TRAIN or VALID) of a spooled window, one hour file per batch, as model
    columns (categoricals with the contract's categories, so every batch encodes them alike)."""

    def __init__(self, spool: Spool, contract: Contract, part: int, cache_prefix: str | None = None):
        self.spool, self.contract, self.part = spool, contract, part
        self._files = [i for i, parts in enumerate(spool.parts) if (parts == part).any()]
        self._next = 0
        super().__init__(cache_prefix=cache_prefix, release_data=True)

    def next(self, input_data) -> bool:
        if self._next == len(self._files):
            return False
        X, y = part_rows(self.spool, self.contract, self._files[self._next], self.part)
        self._next += 1
        input_data(data=X, label=y)
        return True

    def reset(self) -> None:
        self._next = 0


def part_rows(spool: Spool, contract: Contract, i: int, part: int):
    """The model columns and labels of file `i`'s rows in `part`."""
    df = spool.read(i, contract.raw_columns)
    mask = spool.parts[i] == part
    return model_frame(contract, df.loc[mask].reset_index(drop=True)), spool.labels[i][mask].astype("float32")


def fit_iterated(spool: Spool, contract: Contract, params: dict, max_rounds: int, extmem: bool) -> xgb.Booster:
    """Train on every TRAIN row, stopping early on the VALID rows, reading the spool through iterators."""
    kind = xgb.ExtMemQuantileDMatrix if extmem else xgb.QuantileDMatrix
    cache = (lambda name: str(spool.folder / "xgb-cache" / name)) if extmem else (lambda name: None)
    if extmem:
        (spool.folder / "xgb-cache").mkdir(exist_ok=True)
    options = {"max_bin": BASE_PARAMS["max_bin"], "enable_categorical": True, "nthread": params.get("nthread")}
    train_batches = HourBatches(spool, contract, TRAIN, cache("train"))
    dtrain = kind(train_batches, **options)
    valid_batches = HourBatches(spool, contract, VALID, cache("valid"))
    dvalid = kind(valid_batches, ref=dtrain, **options)
    return xgb.train(params, dtrain, num_boost_round=max_rounds, evals=[(dvalid, "valid")],
                     early_stopping_rounds=EARLY_STOPPING_ROUNDS, verbose_eval=False)


def fit_on_dask(address: str, spool: Spool, contract: Contract, params: dict, max_rounds: int) -> xgb.Booster:
    """Train on the Dask cluster at `address`: each hour's TRAIN and VALID rows become partitions there,
    the workers bin and boost them (`xgboost.dask`), and the booster comes back."""
    try:
        import dask.dataframe as dd
        from dask.distributed import Client
        from xgboost import dask as dxgb
    except ImportError:
        raise RuntimeError("CONTINUUM_DASK_SCHEDULER is set but dask is not installed: pip install "
                           "'continuum[dask]', or leave CONTINUUM_DASK_SCHEDULER empty to train in this process") from None
    with Client(address) as client:
        workers = sorted(client.scheduler_info()["workers"])
        matrices = {}
        for part in (TRAIN, VALID):
            xs, ys = [], []
            files = [i for i, parts in enumerate(spool.parts) if (parts == part).any()]
            pieces = -(-len(workers) // len(files))  # every worker gets rows: XGBoost refuses a worker without any
            for i in files:
                X, y = part_rows(spool, contract, i, part)
                for rows in np.array_split(np.arange(len(X)), pieces):
                    to = [workers[len(xs) % len(workers)]]
                    xs.append(client.scatter(X.iloc[rows], workers=to))
                    ys.append(client.scatter(pd.Series(y[rows], index=X.index[rows]), workers=to))
            data = dd.from_delayed(xs, meta=X.iloc[:0])
            label = dd.from_delayed(ys, meta=pd.Series(y[:0], index=X.index[:0]))
            matrices[part] = dxgb.DaskQuantileDMatrix(client, data, label, max_bin=BASE_PARAMS["max_bin"],
                                                      enable_categorical=True, ref=matrices.get(TRAIN))
        params = {k: v for k, v in params.items() if k != "nthread"}  # each worker uses its own threads
        out = dxgb.train(client, params, matrices[TRAIN], num_boost_round=max_rounds,
                         evals=[(matrices[VALID], "valid")], early_stopping_rounds=EARLY_STOPPING_ROUNDS,
                         verbose_eval=False)
    return out["booster"]
