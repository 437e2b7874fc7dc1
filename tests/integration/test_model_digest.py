"""A model file changed in the artifact store after its version was approved, against the real MLflow
server and its store, a real lake, broker and sidecar: registration tags the digest of the registered
bytes; promotion and rollback refuse the changed file and page on-call with the evidence; the sidecar
refuses the swap, keeps scoring every event with the old model and alerts once per version and file."""

from __future__ import annotations

import hashlib
from collections import Counter

import orjson
import pytest
from mlflow import MlflowClient

from ml.lake import Lake
from ml.registry import DigestMismatch, champion, expected_digest, set_champion
from ml.serving import swap
from ml.serving.metrics import ServingMetrics
from ml.serving.swap import ModelKeeper
from tests.integration.alert_support import use_webhook, webhook  # noqa: F401
from tests.integration.digest_support import other_model, overwrite_model, register_tagged, stored_model_file
from tests.integration.serving_models import CONTRACT, new_model, train_booster
from tests.integration.serving_process import SidecarProcess, promote, serving_env
from tests.integration.serving_topics import events, produce, read_topic, values

pytestmark = pytest.mark.integration


def test_registration_tags_the_digest_of_the_bytes_it_registered(mlflow_uri, tmp_path):
    client, lake = MlflowClient(mlflow_uri), Lake(str(tmp_path / "lake"))
    name = new_model(client)
    booster = train_booster(seed=5)
    version = register_tagged(client, name, lake, booster)
    stored = hashlib.sha256(stored_model_file(client, name, version).read_bytes()).hexdigest()
    mv = client.get_model_version(name, version)
    assert mv.tags["model_sha256"] == stored == hashlib.sha256(bytes(booster.save_raw("ubj"))).hexdigest()
    assert client.get_run(mv.run_id).data.params["model_sha256"] == stored
    assert expected_digest(client, lake, name, version) == stored


def test_promotion_and_rollback_refuse_a_model_file_changed_after_approval(mlflow_uri, tmp_path, monkeypatch,
                                                                         webhook):  # noqa: F811
    from plugins.tasks.promotion import promote, rollback

    client, lake = MlflowClient(mlflow_uri), Lake(str(tmp_path / "lake"))
    name = new_model(client)
    first, second, third = (register_tagged(client, name, lake, train_booster(seed=s)) for s in (11, 12, 13))
    for var, value in {"MODEL_NAME": name, "LAKE_URI": lake.uri, "MLFLOW_TRACKING_URI": mlflow_uri,
                       "ALERT_STATE_PATH": str(tmp_path / "alerts.json")}.items():
        monkeypatch.setenv(f"CONTINUUM_{var}", value)
    use_webhook(monkeypatch, webhook.url)
    assert promote(first)["to"] == first and promote(second)["to"] == second  # unchanged files move champion

    expected = client.get_model_version(name, third).tags["model_sha256"]
    found = overwrite_model(client, name, third, other_model(seed=14))
    with pytest.raises(DigestMismatch, match=f"has sha256 {found}, not the {expected}"):
        promote(third)
    assert champion(client, name).version == second, "the champion did not move"
    rolled = overwrite_model(client, name, first, other_model(seed=15))
    with pytest.raises(DigestMismatch, match=f"has sha256 {rolled}"):
        rollback(None, "alice", "bad alerts")
    assert champion(client, name).version == second

    pages = [b["json"] for b in webhook.bodies if b["json"]["kind"] == "model_refused"]
    assert [(p["evidence"]["version"], p["evidence"]["found"], p["severity"]) for p in pages] == [
        (third, found, "page"), (first, rolled, "page")]
    evidence = pages[0]["evidence"]
    assert evidence["expected"] == expected
    assert evidence["artifact_uri"] == client.get_model_version_download_uri(name, third)


def test_the_keeper_refuses_a_changed_file_alerting_once_per_version_and_file(mlflow_uri, tmp_path, monkeypatch):
    client, lake = MlflowClient(mlflow_uri), Lake(str(tmp_path / "lake"))
    name = new_model(client)
    serving, changed = (register_tagged(client, name, lake, train_booster(seed=s)) for s in (21, 22))
    original = stored_model_file(client, name, changed).read_bytes()
    set_champion(client, name, serving, "test", "first", lake)
    alerts: list[dict] = []
    keeper = ModelKeeper(client, mlflow_uri, name, CONTRACT, ServingMetrics(), alerts.append, lake)
    keeper.refresh()
    assert keeper.state.champion.version == serving

    monkeypatch.setattr(swap, "RETRY_REFUSED_S", 0.0)  # look again at every pass, as after the retry interval
    found = overwrite_model(client, name, changed, other_model(seed=23))
    set_champion(client, name, changed, "test", "second", lake)  # promoted: the check left is the file's
    keeper.refresh()
    keeper.refresh()
    assert keeper.state.champion.version == serving
    assert [(a["version"], a["evidence"]["found"]) for a in alerts] == [(changed, found)], "one alert per file"
    assert keeper.mismatched[changed]["expected"] == hashlib.sha256(original).hexdigest()

    again = overwrite_model(client, name, changed, other_model(seed=24))
    keeper.refresh()
    assert [a["evidence"]["found"] for a in alerts] == [found, again], "another file is news"
    overwrite_model(client, name, changed, original)  # the registered bytes, restored: served
    keeper.refresh()
    assert keeper.state.champion.version == changed and changed not in keeper.mismatched


def test_the_sidecar_refuses_a_swap_to_a_changed_file_and_scores_every_event_with_the_old_model(
        topic_factory, settings, tmp_path):
    ctx = serving_env(topic_factory, settings)
    env, client, bootstrap, name, lake = ctx["env"], ctx["client"], ctx["bootstrap"], ctx["name"], ctx["lake"]
    serving, changed = (register_tagged(client, name, lake, train_booster(seed=s)) for s in (31, 32))
    promote(env, client, serving)
    sidecar = SidecarProcess(env, tmp_path / "sidecar.log").start()
    try:
        assert sidecar.wait_health()["champion"] == serving
        stream = events(900)
        produce(bootstrap, env["CONTINUUM_TOPIC_TELEMETRY"], stream[:300])
        expected = client.get_model_version(name, changed).tags["model_sha256"]
        found = overwrite_model(client, name, changed, other_model(seed=33))
        promote(env, client, changed)  # champion moved to the approved version whose file was then replaced
        produce(bootstrap, env["CONTINUUM_TOPIC_TELEMETRY"], stream[300:600])
        alert = refusal(bootstrap, env, changed)
        assert (alert["evidence"]["expected"], alert["evidence"]["found"]) == (expected, found)
        assert alert["evidence"]["artifact_uri"] == client.get_model_version_download_uri(name, changed)
        assert f"Still serving v{serving}" in alert["reason"] and alert["severity"] == "page"
        produce(bootstrap, env["CONTINUUM_TOPIC_TELEMETRY"], stream[600:])
        preds = values(read_topic(bootstrap, env["CONTINUUM_TOPIC_PREDICTIONS"],
                                  until=lambda r: len({orjson.loads(x["value"])["event_id"] for x in r}) >= 900))
        ids = Counter(p["event_id"] for p in preds)
        assert set(ids) == {orjson.loads(v)["event_id"] for _, v, _ in stream}
        assert not [i for i, n in ids.items() if n > 1], "an event scored twice"
        assert {p["model_version"] for p in preds} == {serving}
        health = sidecar.wait_health()
        assert health["champion"] == serving and health["refused"] == [changed]
        assert health["digest_mismatch"][changed]["found"] == found
    finally:
        sidecar.close()


def refusal(bootstrap: str, env: dict, version: str) -> dict:
    """The sidecar's first model_refused alert for a version, read until it is there."""
    def mine(rows):
        return [a for a in values(rows) if a.get("type") == "model_refused" and a["evidence"]["version"] == version]

    found = mine(read_topic(bootstrap, env["CONTINUUM_TOPIC_ALERTS"], timeout_s=60, until=lambda r: mine(r)))
    assert found, "no model_refused alert"
    return found[0]
