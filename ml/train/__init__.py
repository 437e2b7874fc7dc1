"""Retraining: the training set from validated lake hours, the XGBoost search, the MLflow run and version."""

from ml.train.dataset import DatasetError, Split, TrainingSet, build_training_set, check_split, time_split
from ml.train.fit import FitResult, candidates, fit
from ml.train.retrain import RetrainRequest, RetrainSummary, plan_request, regime_request, train_candidate
from ml.train.track import log_candidate, register_challenger, version_tags

__all__ = [
    "DatasetError", "FitResult", "RetrainRequest", "RetrainSummary", "Split", "TrainingSet", "build_training_set", "candidates",
    "check_split", "fit", "log_candidate", "plan_request", "regime_request", "register_challenger", "time_split", "train_candidate",
    "version_tags",
]
