"""What may be loaded and served, against the real MLflow server, a real lake, broker and sidecar: an
artifact that ships code is refused without importing it; a verdict is judged on the training run, not
on tags; a champion moved to an unapproved or changed version is refused and the old one serves."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import orjson
import pytest
import yaml
from mlflow import MlflowClient

from ml.lake import Lake
from ml.registry import RegistryError, load_version, set_champion
from ml.registry.trust import Untrusted, judge_version, read_verdict
from ml.serving.metrics import ServingMetrics
from ml.serving.swap import ModelKeeper
from ml.settings import GateSettings
from tests.integration.serving_models import CONTRACT, new_model, register, train_booster
from tests.integration.serving_process import SidecarProcess, promote, serving_env
from tests.integration.serving_topics import events, produce, read_topic, values

pytestmark = pytest.mark.integration
EVIL = "import pathlib\npathlib.Path({marker!r}).write_text('imported')\n\nclass X:\n    pass\n"


def crafted(client, name: str, marker: Path, xgboost_flavor: dict, code_folder: bool = True) -> str:
    """Register a model whose MLmodel is changed by `xgboost_flavor`, beside a code/evil.py that writes
    `marker` when it is imported."""
    with mlflow.start_run() as run, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model"
        mlflow.xgboost.save_model(train_booster(), str(path), model_format="ubj", pip_requirements=["xgboost"])
        spec = yaml.safe_load((path / "MLmodel").read_text())
        spec["flavors"]["xgboost"].update(xgboost_flavor)
        (path / "MLmodel").write_text(yaml.safe_dump(spec))
        if code_folder:
            (path / "code").mkdir()
            (path / "code" / "evil.py").write_text(EVIL.format(marker=str(marker)))
        mlflow.log_artifacts(str(path), "model")
    return client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id).version


@pytest.mark.parametrize("flavor, folder, reason", [
    ({"model_class": "evil.X", "code": "code"}, True, "ships code"),
    ({"model_class": "evil.X"}, True, "has a code/ folder"),
    ({"model_class": "evil.X"}, False, "model_class is 'evil.X'"),
    ({"model_format": "pkl", "data": "model.pkl"}, False, "model_format is 'pkl'"),
])
def test_an_artifact_asking_for_code_is_refused_and_nothing_from_it_runs(mlflow_uri, tmp_path, flavor, folder,
                                                                         reason):
    mlflow.set_tracking_uri(mlflow_uri)
    client = MlflowClient(mlflow_uri)
    name, marker = new_model(client), tmp_path / "marker"
    version = crafted(client, name, marker, flavor, folder)
    with pytest.raises(RegistryError, match=reason):
        load_version(mlflow_uri, name, version)
    assert not marker.exists(), "loading ran code from the artifact"


def test_the_sidecar_keeper_and_the_gates_refuse_a_code_artifact_without_importing_it(mlflow_uri, tmp_path):
    mlflow.set_tracking_uri(mlflow_uri)
    client = MlflowClient(mlflow_uri)
    name, marker, lake = new_model(client), tmp_path / "marker", Lake(str(tmp_path / "lake"))
    version = crafted(client, name, marker, {"model_class": "evil.X", "code": "code"})
    set_champion(client, name, version, "test", "moved as a promotion would", lake)
    alerts: list[dict] = []
    keeper = ModelKeeper(client, mlflow_uri, name, CONTRACT, ServingMetrics(), alerts.append, lake)
    keeper.refresh()
    assert keeper.state is None and list(keeper.refused) == [version]
    assert "ships code" in keeper.refused[version][0] and alerts[0]["version"] == version
    with pytest.raises(RegistryError, match="ships code"):
        judge_version(mlflow_uri, lake, name, version, GateSettings(), None)
    assert not marker.exists() and read_verdict(lake, name, version) is None


def test_the_verdict_is_judged_on_the_training_run_not_on_tags(mlflow_uri, tmp_path):
    mlflow.set_tracking_uri(mlflow_uri)
    client = MlflowClient(mlflow_uri)
    name = new_model(client)
    version = register(client, name)  # its run logs a holdout_roc_auc of about 0.97
    run_id = client.get_model_version(name, version).run_id
    logged = client.get_run(run_id).data.metrics["holdout_roc_auc"]
    strict = GateSettings(floor=round(logged + 0.001, 4))  # just above what the run logged
    for key, value in {"holdout_roc_auc": "0.999", "validation": "valid", "latency_ms_per_1k": "1",
                       "model_bytes": "1000"}.items():  # everything the gates once read from tags
        client.set_model_version_tag(name, version, key, value)
    client.log_metric(run_id, "holdout_roc_auc", 0.999)  # logged after the run ended: does not count
    record = judge_version(mlflow_uri, Lake(str(tmp_path / "a")), name, version, strict, None)
    assert not record["passed"] and [g["name"] for g in record["gates"] if not g["passed"]] == ["metric"]
    assert record["inputs"]["metrics"]["holdout_roc_auc"] == logged and f"{logged:.4f} < floor" in \
        record["gates"][0]["detail"]
    at_edge = GateSettings(floor=logged)
    assert judge_version(mlflow_uri, Lake(str(tmp_path / "b")), name, version, at_edge, None)["passed"]

    end = client.get_run(run_id).info.end_time
    client.log_metric(run_id, "holdout_roc_auc", 0.999, timestamp=end - 1)  # back-dated into the run
    with pytest.raises(Untrusted, match="2 different values of holdout_roc_auc"):
        judge_version(mlflow_uri, Lake(str(tmp_path / "c")), name, version, at_edge, None)


def test_the_sidecar_refuses_an_unapproved_or_changed_champion_and_the_old_one_keeps_serving(
        topic_factory, settings, mlflow_uri, tmp_path):
    ctx = serving_env(topic_factory, settings)
    env, client, bootstrap, name, lake = ctx["env"], ctx["client"], ctx["bootstrap"], ctx["name"], ctx["lake"]
    approved = register(client, name, train_booster(seed=1), lake=lake)
    pending = register(client, name, train_booster(seed=2), lake=lake, approve=False)  # passed, nobody approved
    changed = register(client, name, train_booster(seed=3), lake=lake, in_run=True)  # approved, then overwritten
    promote(env, client, approved)
    other = Path(tempfile.mkdtemp()) / "model.ubj"
    train_booster(seed=4).save_model(str(other))
    client.log_artifact(client.get_model_version(name, changed).run_id, str(other), "model")
    sidecar = SidecarProcess(env, tmp_path / "sidecar.log").start()
    try:
        assert sidecar.wait_health()["champion"] == approved
        for version, reason in ((pending, "not approved"), (changed, "not the")):
            promote(env, client, version)  # moved as promote_model moves it, but around its checks
            refused = refusals(bootstrap, env, version)
            assert refused and reason in refused[0]["reason"], refused
            assert f"Still serving v{approved}" in refused[0]["reason"]
        good = events(600)
        produce(bootstrap, env["CONTINUUM_TOPIC_TELEMETRY"], good)
        preds = values(read_topic(bootstrap, env["CONTINUUM_TOPIC_PREDICTIONS"], until=lambda r: len(r) >= len(good)))
        assert {p["event_id"] for p in preds} == {orjson.loads(v)["event_id"] for _, v, _ in good}
        assert {p["model_version"] for p in preds} == {approved}
        health = sidecar.wait_health()
        assert health["champion"] == approved and health["refused"] == sorted([pending, changed])
    finally:
        sidecar.close()


def refusals(bootstrap: str, env: dict, version: str) -> list[dict]:
    """The sidecar's model_refused alerts for a version, read until there is one."""
    def mine(rows):
        return [a for a in values(rows) if a.get("type") == "model_refused" and a["evidence"]["version"] == version]

    return mine(read_topic(bootstrap, env["CONTINUUM_TOPIC_ALERTS"], timeout_s=60, until=lambda r: mine(r)))
