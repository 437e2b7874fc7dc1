"""A candidate from a spooled window: the same split, checks, search and holdout figures as
`fit_candidate`, without the window ever being one frame.

    spool = spool_window(lake, contract, start, end, as_of, folder)
    candidate = fit_streamed(contract, spool, settings.retrain)   # spool.frame: the window's reference sample

The search runs on random samples of the training and validation rows (`search_rows`, as it does in
memory); the chosen parameters are then fitted on every training row by `ml.train.batches`: through
a data iterator in this process, with the binned matrix on disk past `extmem_rows` training rows, or
on the Dask cluster of `dask_scheduler`. The holdout is read whole, as the champion is judged on it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.contract import Contract, model_frame
from ml.evaluate import evaluate, score
from ml.monitor.estimate import fit_calibration
from ml.settings import RetrainSettings
from ml.train.batches import fit_iterated, fit_on_dask
from ml.train.candidate import Candidate
from ml.train.dataset import Split, check_counts
from ml.train.fit import fit
from ml.train.spool import HOLDOUT, TRAIN, VALID, Spool
from ml.train.track import REFERENCE_ROWS


def fit_streamed(contract: Contract, spool: Spool, retrain: RetrainSettings, hyperparameters: dict | None = None,
                 search_seconds: float | None = None, seed: int = 0) -> Candidate:
    """Split the spool by time, refuse a split too small to learn or judge (`DatasetError`), search on
    samples, fit on every training row, evaluate and calibrate on the holdout. Leaves a sample of the
    whole window in `spool.frame` (the drift reference the run records)."""
    label = contract.label.field
    spool.split(retrain.holdout_fraction, retrain.validation_fraction)
    train_rows, positives = spool.count(TRAIN), spool.count(TRAIN, 1)
    check_counts(spool.rows, positives, train_rows, {"valid": _values(spool, VALID), "holdout": _values(spool, HOLDOUT)},
                 retrain.min_rows, retrain.min_per_class)
    rng = np.random.default_rng(seed)
    draw = lambda n, k: np.sort(rng.choice(n, min(n, k), replace=False))  # noqa: E731
    train, valid, holdout, spool.frame = gather(spool, {
        TRAIN: draw(train_rows, retrain.search_rows), VALID: draw(spool.count(VALID), retrain.search_rows // 2),
        HOLDOUT: None, None: draw(spool.rows, REFERENCE_ROWS)})
    if retrain.dask_scheduler:
        final = lambda params: fit_on_dask(retrain.dask_scheduler, spool, contract, params, retrain.max_rounds)  # noqa: E731
    else:
        extmem = train_rows > retrain.extmem_rows
        final = lambda params: fit_iterated(spool, contract, params, retrain.max_rounds, extmem)  # noqa: E731
    result = fit(model_frame(contract, train), train[label], model_frame(contract, valid), valid[label],
                 search_seconds or retrain.search_seconds, retrain.max_rounds, hyperparameters, retrain.search_rows,
                 seed, final=final)
    return Candidate(Split(train, valid, holdout), result, evaluate(result.booster, contract, holdout, retrain.threshold),
                     retrain.threshold, fit_calibration(holdout[label], score(result.booster, contract, holdout)),
                     rows={"train": train_rows, "valid": spool.count(VALID), "holdout": len(holdout)},
                     train_positives=positives)


def _values(spool: Spool, part: int) -> set:
    return {int(v) for y, p in zip(spool.labels, spool.parts) for v in np.unique(y[p == part])}


def gather(spool: Spool, wanted: dict) -> list[pd.DataFrame]:
    """One read of the spool: for each (part, positions) in `wanted`, the rows of that part (None: of
    every part) at those positions in spool order (positions None: all of them), sorted by event time
    and id."""
    taken: dict = {key: [] for key in wanted}
    seen = dict.fromkeys(wanted, 0)
    for i, parts in enumerate(spool.parts):
        df = None
        for key, positions in wanted.items():
            rows = np.flatnonzero(parts == key) if key is not None else np.arange(len(parts))
            if positions is not None:
                local = positions[(positions >= seen[key]) & (positions < seen[key] + len(rows))] - seen[key]
                seen[key] += len(rows)
                rows = rows[local]
            if len(rows):
                df = spool.read(i) if df is None else df
                taken[key].append(df.iloc[rows])
    order = [spool.event_time, spool.event_id]
    return [pd.concat(frames, ignore_index=True).sort_values(order, kind="stable", ignore_index=True) if frames
            else pd.read_parquet(spool.files[0]).iloc[:0] for frames in taken.values()]
