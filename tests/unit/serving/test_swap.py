"""The model keeper tells a registry that did not answer from a version that may not serve: the first
leaves the old model serving and is asked again at the next look, without a page; the second is refused."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import requests
from mlflow.exceptions import MlflowException

from ml.audit import write_record
from ml.lake import Lake
from ml.registry.digest import Untrusted
from ml.serving import model as serving_model
from ml.serving import swap
from ml.serving.metrics import ServingMetrics
from ml.serving.model import ModelRefused, ModelUnavailable, ServingModel
from tests.unit.serving.serving_models import CONTRACT, constant_booster


class Aliases:
    """Where `champion` points, as a registry client answers it."""

    def __init__(self, version: str) -> None:
        self.version = version

    def get_model_version_by_alias(self, name: str, alias: str):
        return SimpleNamespace(version=self.version)


def move(lake: Lake, version: str) -> None:
    """The audit record of a promotion to `version`, as promote_model writes it (serving needs it)."""
    write_record(lake, {"type": "promotion", "model": "m", "alias": "champion", "to": version, "actor": "test"})


@pytest.fixture
def keeper(monkeypatch, tmp_path):
    """A keeper serving v1, then v2 promoted, whose loads of v2 fail as `failure[0]` says (None: it loads)."""
    failure: list = [None]

    def load(tracking_uri, name, version, lake, approved=True):
        if version != "1" and failure[0] is not None:
            raise failure[0]
        return ServingModel(name, version, constant_booster(0.2), 0.5)

    monkeypatch.setattr(swap, "load_version", load)
    pages: list[dict] = []
    lake = Lake(str(tmp_path / "lake"))
    move(lake, "1")
    kept = swap.ModelKeeper(Aliases("1"), "http://registry", "m", CONTRACT, ServingMetrics(), pages.append, lake)
    kept.refresh()
    kept.client.version = "2"  # promoted
    move(lake, "2")
    return kept, failure, pages


def test_a_registry_that_does_not_answer_keeps_the_old_model_and_the_next_look_swaps(keeper):
    kept, failure, pages = keeper
    failure[0] = ModelUnavailable("m v2 could not be fetched or verified now")
    with pytest.raises(ModelUnavailable):
        kept.refresh()
    assert kept.state.champion.version == "1" and kept.refused == {} and pages == []
    failure[0] = None  # the registry is back
    kept.refresh()
    assert kept.state.champion.version == "2"


def test_a_version_that_may_not_serve_is_refused_and_paged_once(keeper):
    kept, failure, pages = keeper
    failure[0] = ModelRefused("m v2 failed to load: Untrusted: not approved")
    kept.refresh()
    failure[0] = None
    kept.refresh()  # refused versions are not tried again at once
    assert kept.state.champion.version == "1" and list(kept.refused) == ["2"]
    assert [p["version"] for p in pages] == ["2"] and pages[0]["type"] == "model_refused"


def connection_refused() -> MlflowException:
    try:
        raise requests.exceptions.ConnectionError("Max retries exceeded: Connection refused")
    except requests.exceptions.ConnectionError as exc:
        return MlflowException(f"API request failed with exception {exc}")


@pytest.mark.parametrize("raised, expected", [(Untrusted("v2 is not approved"), ModelRefused),
                                              ("connection", ModelUnavailable)])
def test_loading_a_version_is_refused_on_an_answer_and_unavailable_without_one(monkeypatch, raised, expected):
    from ml.registry import trust

    def load_trusted(*args, **kwargs):
        if raised == "connection":
            try:
                raise connection_refused()
            except MlflowException as exc:
                raise MlflowException(f"get model version failed: {exc.message}")
        raise raised

    monkeypatch.setattr(trust, "load_trusted", load_trusted)
    with pytest.raises(expected, match="m v2"):
        serving_model.load_version("http://registry", "m", "2", lake=None)
