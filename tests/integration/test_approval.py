"""Who may approve and what an approval promotes, against the real MLflow server and a real lake: a
tag the pipeline account sets approves nothing, an approval holds only for the bytes approved and only
for CONTINUUM_APPROVAL_TTL_HOURS, and a champion moved around the promotion path is not served or
batch-scored."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import mlflow
import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from mlflow import MlflowClient

from ml.batch import resolve_version
from ml.lake import Lake
from ml.lake.layout import verdict_key
from ml.registry import UnrecordedMove, audit_log, champion, read_verdict, set_champion
from ml.serving import swap
from ml.serving.metrics import ServingMetrics
from ml.serving.swap import ModelKeeper
from plugins.tasks.promotion import promote
from tests.integration.serving_models import CONTRACT, new_model, register, train_booster

pytestmark = pytest.mark.integration
TTL_HOURS = 24.0


@pytest.fixture(scope="module")
def registry(mlflow_uri, tmp_path_factory):
    """A model of this module's own with three judged versions (small boosters): v1 approved, v2 and v3
    waiting for a person. Each test uses its own version or copies what it changes."""
    mlflow.set_tracking_uri(mlflow_uri)
    client, lake = MlflowClient(mlflow_uri), Lake(str(tmp_path_factory.mktemp("approval-lake")))
    name = new_model(client)
    approved = register(client, name, train_booster(seed=41, rounds=2, events=500), lake=lake)
    pending = [register(client, name, train_booster(seed=s, rounds=2, events=500), lake=lake, approve=False)
               for s in (42, 43)]
    return client, lake, name, approved, *pending


@pytest.fixture
def deployment(registry, monkeypatch, tmp_path):
    client, lake, name, *_ = registry
    for var, value in {"MODEL_NAME": name, "LAKE_URI": lake.uri, "APPROVAL_TTL_HOURS": str(TTL_HOURS),
                       "ALERT_STATE_PATH": str(tmp_path / "alerts.json")}.items():
        monkeypatch.setenv(f"CONTINUUM_{var}", value)
    return registry


def edit_approval(lake: Lake, name: str, version: str, **changes) -> None:
    """Change a version's recorded approval in the lake, as time passing (or a copied record) would."""
    record = read_verdict(lake, name, version)
    record["approval"] = {**(record["approval"] or {}), **changes}
    lake.write_text(verdict_key(name, version), json.dumps(record))


def moved_to(client, lake: Lake, name: str, version: str) -> bool:
    """Whether champion points at the version or the audit trail records a move to it."""
    current = champion(client, name)
    return (current is not None and current.version == version) or version in [r["to"] for r in audit_log(lake)]


def test_an_approval_tag_set_by_the_pipeline_account_approves_nothing(deployment):
    client, lake, name, _, pending, _ = deployment
    client.set_model_version_tag(name, pending, "approved_by", "alice")  # the tests log in as pipeline
    client.set_model_version_tag(name, pending, "approval", "approved")
    with pytest.raises(AirflowSkipException, match=f"v{pending} is not approved"):
        promote(pending)
    assert not moved_to(client, lake, name, pending)


def test_an_approval_given_for_one_digest_does_not_promote_another(deployment):
    client, lake, name, approved, _, other = deployment
    given = read_verdict(lake, name, approved)["approval"]  # v1's approval, presented for v3's bytes
    edit_approval(lake, name, other, **{k: given[k] for k in ("decision", "by", "how", "at", "digest")})
    with pytest.raises(AirflowFailException, match=f"approved for a model file with sha256 {given['digest']}"):
        promote(other)
    assert not moved_to(client, lake, name, other)


def test_an_approval_promotes_until_it_expires_and_not_from_then_on(deployment):
    client, lake, name, approved, *_ = deployment
    edit_approval(lake, name, approved, at=(datetime.now(timezone.utc) - timedelta(hours=TTL_HOURS)).isoformat())
    with pytest.raises(AirflowFailException, match=f"expired after {TTL_HOURS:g} h"):
        promote(approved)
    assert not moved_to(client, lake, name, approved)

    edit_approval(lake, name, approved,  # a minute inside the TTL: promoted, the audit naming the approver
                  at=(datetime.now(timezone.utc) - timedelta(hours=TTL_HOURS, minutes=-1)).isoformat())
    record = promote(approved)
    assert champion(client, name).version == approved
    assert [(r["to"], r["actor"]) for r in audit_log(lake)] == [(approved, "test")] and record["actor"] == "test"


def test_a_champion_moved_around_promotion_is_not_served_nor_batch_scored(mlflow_uri, tmp_path, monkeypatch):
    mlflow.set_tracking_uri(mlflow_uri)
    client, lake = MlflowClient(mlflow_uri), Lake(str(tmp_path / "lake"))
    name = new_model(client)
    first, second = (register(client, name, train_booster(seed=s, rounds=2, events=500), lake=lake)
                     for s in (51, 52))  # both judged and approved: only how champion moved differs
    set_champion(client, name, first, "test", "promoted", lake)
    alerts: list[dict] = []
    keeper = ModelKeeper(client, mlflow_uri, name, CONTRACT, ServingMetrics(), alerts.append, lake)
    keeper.refresh()
    assert keeper.state.champion.version == first and resolve_version(client, name, "champion", lake) == first

    client.set_registered_model_alias(name, "champion", second)  # by hand: EDIT on the model allows it
    keeper.refresh()
    assert keeper.state.champion.version == first and not alerts, "within the grace a promotion has to record"
    with pytest.raises(UnrecordedMove, match=f"points at v{second}, but its latest recorded move is to v{first}"):
        resolve_version(client, name, "champion", lake)
    monkeypatch.setattr(swap, "UNRECORDED_GRACE_S", 0.0)  # as when the grace has passed
    keeper.refresh()
    keeper.refresh()
    assert keeper.state.champion.version == first
    assert [(a["version"], a["role"]) for a in alerts] == [(second, "champion")], "paged once"
    assert "moved around promote_model and rollback_model" in alerts[0]["reason"]

    # the remedy: rollback_model moves champion back (recorded); a later promotion moves it on (recorded)
    set_champion(client, name, first, "test", "moved by hand", lake, kind="rollback")
    assert resolve_version(client, name, "champion", lake) == first
    set_champion(client, name, second, "test", "promoted", lake)
    keeper.refresh()
    assert keeper.state.champion.version == second and resolve_version(client, name, "champion", lake) == second
