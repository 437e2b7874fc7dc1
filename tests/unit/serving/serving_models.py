"""Tiny in-memory boosters and one valid event for the serving unit tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.contract import load_contract, model_frame
from ml.serving.model import canned_frame

CONTRACT = load_contract("machine_telemetry")
EVENT = {"event_id": "e1", "device_id": "dev-0001", "ts": "2026-11-22T10:00:00.000Z", "device_type": "M",
         "site": "plant-a", "air_temperature_k": 300.0, "process_temperature_k": 310.0,
         "rotational_speed_rpm": 1500.0, "torque_nm": 40.0, "tool_wear_min": 100.0, "vibration_mm_s": 2.0,
         "firmware": "1.0"}


def constant_booster(p: float):
    """A booster whose every score is p: a base score and no trees, trained on the contract's features."""
    import xgboost as xgb

    X = canned_frame(CONTRACT, 32)
    dtrain = xgb.DMatrix(X, label=np.full(len(X), p), enable_categorical=True)
    return xgb.train({"objective": "binary:logistic", "base_score": p, "eta": 0.0}, dtrain, 1)


def torque_booster():
    """A booster whose score rises with torque: alert above about 60 Nm."""
    import xgboost as xgb

    rows = 400
    frame = pd.DataFrame({name: [EVENT[name]] * rows for name in CONTRACT.raw_columns})
    frame["torque_nm"] = np.linspace(0, 100, rows)
    X = model_frame(CONTRACT, frame)
    dtrain = xgb.DMatrix(X, label=(frame["torque_nm"] > 60).astype(int), enable_categorical=True)
    return xgb.train({"objective": "binary:logistic", "max_depth": 2}, dtrain, 20)
