"""Record a candidate in MLflow: the run (params, metrics, lineage, reference sample, importance plot,
the model as UBJ with signature and input example) and its registered version with tags and alias.

Each registered model has its own experiment, named after it, so runs and versions line up.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature

from ml.contract import Contract, model_frame
from ml.registry import CHALLENGER, CHAMPION, by_alias
from ml.registry.approval import APPROVAL, PENDING
from ml.registry.digest import DIGEST_TAG, record_digest
from ml.registry.trust import log_gate_inputs

log = logging.getLogger(__name__)

MODEL_ARTIFACT = "model"
REFERENCE_ARTIFACT = "reference/reference.parquet"
REFERENCE_ROWS = 10_000
SCORES_ARTIFACT = "checks/holdout_scores.json"


def log_candidate(tracking_uri: str, model_name: str, contract: Contract, run_name: str, booster, params: dict,
                  metrics: dict, lineage: dict, window: pd.DataFrame, holdout_scores: pd.DataFrame,
                  trials: list[dict], champion_version: str | None = None, validation: str = "valid") -> dict:
    """Log one training run with its model; returns {run_id, model_uri, experiment_id, model_sha256}.

    The promotion gates read this run, never the version's tags: `metrics` holds the holdout figures,
    latency and size of the candidate and the champion's figures on the same holdout; the champion's
    version, the data's validation status and the model file's SHA-256 are logged as params
    (`ml.registry.trust.log_gate_inputs`).

    The drift reference is a sample of the whole training window (train, validation and holdout rows):
    every hour of the day it covered is in it, so monitoring can compare a window with the same hours."""
    mlflow.set_tracking_uri(tracking_uri)
    experiment = mlflow.set_experiment(model_name)
    with mlflow.start_run(run_name=run_name, experiment_id=experiment.experiment_id) as run:
        mlflow.log_params({k: v for k, v in params.items() if v is not None})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)})
        mlflow.set_tags({"data_hash": lineage["data_hash"], "contract": contract.name,
                         "trigger": params.get("trigger", "")})
        hours = pd.DataFrame(lineage["hours"])
        dataset = mlflow.data.from_pandas(hours, source=lineage["lake"], digest=lineage["data_hash"][:36],
                                          name=f"lake-hours-{lineage['data_hash'][:12]}")
        mlflow.log_input(dataset, context="training")
        mlflow.log_dict(lineage, "lineage.json")
        mlflow.log_dict({"trials": trials}, "search/trials.json")
        mlflow.log_dict({"event_id": holdout_scores.iloc[:, 0].tolist(), "score": holdout_scores.iloc[:, 1].tolist()},
                        SCORES_ARTIFACT)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "reference.parquet"
            reference_frame(contract, window).to_parquet(path, index=False)
            mlflow.log_artifact(str(path), "reference")
        mlflow.log_figure(_importance_figure(booster), "feature_importance.png")
        example = model_frame(contract, window.iloc[:5])
        signature = infer_signature(example, booster.inplace_predict(example))
        digest = log_gate_inputs(champion_version, validation, booster)
        info = mlflow.xgboost.log_model(booster, name=MODEL_ARTIFACT, model_format="ubj", signature=signature,
                                        input_example=example)
    return {"run_id": run.info.run_id, "model_uri": info.model_uri, "model_id": info.model_id,
            "experiment_id": experiment.experiment_id, "model_sha256": digest}


def reference_frame(contract: Contract, window: pd.DataFrame) -> pd.DataFrame:
    """The drift reference a training window leaves: at most REFERENCE_ROWS of its rows, drawn with a
    fixed seed, in their order, with the contract's fields and the label."""
    sample = window.sample(min(REFERENCE_ROWS, len(window)), random_state=0).sort_index()
    return sample[[c for c in contract.fields + [contract.label.field] if c in sample.columns]]


def _importance_figure(booster):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gain = sorted(booster.get_score(importance_type="gain").items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(6, 0.4 * max(len(gain), 1) + 1))
    ax.barh([k for k, _ in gain], [v for _, v in gain])
    ax.set_xlabel("total gain")
    ax.set_title("feature importance")
    fig.tight_layout()
    plt.close(fig)
    return fig


def register_challenger(tracking_uri: str, model_name: str, run: dict, tags: dict[str, str]) -> str:
    """Register the run's model as a new version with `tags`, approval pending, alias `challenger`, and
    tag it with the SHA-256 of the model file it registered (`ml.registry.digest.record_digest`).

    Once per training run: a retried call finds the version this run already registered and returns
    it, leaving its tags (a decision taken since stays) and pointing `challenger` at it only when the
    first call stopped before doing so (not at a champion, not over a newer challenger)."""
    client = MlflowClient(tracking_uri)
    try:
        client.get_registered_model(model_name)
    except mlflow.exceptions.MlflowException:
        client.create_registered_model(model_name, description="Continuum: failure probability of a machine event")
    mv = registered_version(client, model_name, run["run_id"])
    created = mv is None
    if created:
        mv = client.create_model_version(model_name, source=run["model_uri"], run_id=run["run_id"],
                                         model_id=run["model_id"],
                                         tags={**{k: str(v) for k, v in tags.items()}, APPROVAL: PENDING},
                                         description=f"trained by run {run['run_id']}")
    else:
        log.info("run %s is already registered as %s v%s", run["run_id"], model_name, mv.version)
    if created or DIGEST_TAG not in mv.tags:
        registered = record_digest(tracking_uri, model_name, mv.version)
        if registered != run.get("model_sha256", registered):
            log.warning("%s v%s: the registered model file has sha256 %s, the run trained %s; its gates will "
                        "refuse it", model_name, mv.version, registered, run["model_sha256"])
    challenger = by_alias(client, model_name, CHALLENGER)
    if challenger is not None and challenger.version == mv.version:
        return mv.version
    if created or _may_take_challenger(client, model_name, mv.version, challenger):
        client.set_registered_model_alias(model_name, CHALLENGER, mv.version)
    return mv.version


def registered_version(client: MlflowClient, model_name: str, run_id: str):
    """The version of `model_name` registered from a training run (the first, if there are several), or None."""
    for quote in (model_name, run_id):
        if "'" in quote:
            raise ValueError(f"a model name or run id with a quote cannot be looked up: {quote!r}")
    found = client.search_model_versions(f"name='{model_name}' and run_id='{run_id}'")
    return min(found, key=lambda mv: int(mv.version)) if found else None


def _may_take_challenger(client: MlflowClient, model_name: str, version: str, challenger) -> bool:
    """Whether a retry may point `challenger` at a version registered before: not while it is champion,
    and not over a newer version."""
    champion = by_alias(client, model_name, CHAMPION)
    if champion is not None and champion.version == version:
        return False
    return challenger is None or int(challenger.version) < int(version)


def version_tags(metrics: dict, champion: dict | None, lineage: dict, contract: Contract, threshold: float,
                 trigger: str) -> dict[str, str]:
    """The string tags a version carries: serving threshold, contract, lineage, holdout figures, champion's.
    They are for people browsing the registry; promotion and serving decide on the run and the lake."""
    tags = {"threshold": f"{threshold:g}", "contract": contract.name, "schema_hash": contract.schema_hash(),
            "trigger": trigger, "window_start": lineage["window_start"], "window_end": lineage["window_end"],
            "data_hash": lineage["data_hash"], "validation": "valid", "hours": str(lineage["telemetry_hours"])}
    tags.update({k: f"{v:.6g}" for k, v in metrics.items()})
    if champion:
        tags["champion_version"] = champion["version"]
        tags.update({f"champion_{k}": f"{v:.6g}" for k, v in champion["metrics"].items()})
    return tags
