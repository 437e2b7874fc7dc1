"""Watching the monitoring chain: after each paced hour, until it has done what the hour set off; at the
end, until nothing runs but a retrain waiting for hours of a new regime that the replay does not hold."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

import tooling.loop.chain as chain
from ml.contract import load_contract
from ml.lake import Lake
from ml.settings import load_settings
from tooling.loop.chain import ChainWatch
from tooling.loop.timeline import LoopError


class ChainApi:
    """What settle reads from Airflow: the active runs and one task's state (the settle logic is under test)."""

    def __init__(self, active: list[tuple[str, str]], sensor_state: str | None, request: dict | None = None) -> None:
        self._active, self.sensor_state, self.calls, self.request = active, sensor_state, 0, request
        self.xcom_reads = 0

    def xcom(self, dag_id, run_id, task_id):
        assert (dag_id, task_id) == ("retrain_model", "plan_retrain")
        self.xcom_reads += 1
        return self.request

    def active(self, dag_ids):
        self.calls += 1
        return [(d, r) for d, r in self._active if d in dag_ids]

    def task_state(self, dag_id, run_id, task_id):
        assert (dag_id, task_id) == ("retrain_model", "wait_for_data")
        return self.sensor_state

    def run_url(self, dag_id, run_id):
        return f"http://airflow/dags/{dag_id}/runs/{run_id}"


def _loop(api: ChainApi, timeout_s: float = 2.0, lake: Lake | None = None, regime_hours: int = 2) -> ChainWatch:
    settings = SETTINGS.model_copy(update={"retrain_regime_hours": regime_hours})
    return ChainWatch(api, lake, load_contract(SETTINGS.contract), settings, timeout_s)


SETTINGS = load_settings()
SINCE = datetime(2026, 11, 20, 5, tzinfo=timezone.utc)
REQUEST = {"trigger": "request:data", "start": "2026-11-13T05:00:00+00:00", "end": "2026-11-20T08:00:00+00:00",
           "as_of": "2026-11-20T08:05:00+00:00", "regime_since": SINCE.isoformat(), "judged": ["2"]}


@pytest.fixture(autouse=True)
def fast_clock(monkeypatch):
    monkeypatch.setattr(chain.time, "sleep", lambda s: None)
    monkeypatch.setattr(chain, "SENSOR_GIVE_UP_S", 0.05)


def test_a_retrain_waiting_for_regime_hours_the_replay_lacks_counts_as_settled(capsys):
    api = ChainApi([("retrain_model", "asset_triggered__1")], "up_for_reschedule")
    _loop(api).settle()
    assert api.calls > 1, "it was seen waiting more than once before it stopped counting"
    assert "retrain_model asset_triggered__1 waits for labelled hours" in capsys.readouterr().out


@pytest.mark.parametrize("active, state", [
    ([("retrain_model", "manual__1")], "running"),  # training, not waiting
    ([("monitor_model", "scheduled__1")], None),
    ([("retrain_model", "asset_triggered__1"), ("promote_model", "asset_triggered__2")], "up_for_reschedule"),
])
def test_any_other_active_run_keeps_the_chain_busy_and_is_named_when_time_is_up(active, state):
    with pytest.raises(LoopError, match="still running after 0 s: .*" + active[-1][1]):
        _loop(ChainApi(active, state), timeout_s=0.1).settle()


def test_an_idle_chain_is_settled_at_once():
    api = ChainApi([], None)
    _loop(api).settle()
    assert api.calls == 1


class FinishingApi(ChainApi):
    """A retrain seen waiting once, then done."""

    def active(self, dag_ids):
        found = super().active(dag_ids)
        return found if self.calls == 1 else []


def test_a_retrain_that_stopped_waiting_is_not_reported_as_waiting(capsys):
    api = FinishingApi([("retrain_model", "asset_triggered__1")], "up_for_reschedule")
    _loop(api).settle()
    assert api.calls == 2 and "waits for labelled hours" not in capsys.readouterr().out


def test_a_retrain_whose_regime_the_lake_cannot_meet_is_settled_without_waiting_for_its_pokes(tmp_path, capsys):
    # the sensor's own check on the lake, which holds all the replay will offload: no hour since the change
    api = ChainApi([("retrain_model", "asset_triggered__1")], "up_for_reschedule", REQUEST)
    _loop(api, lake=Lake(str(tmp_path / "lake"))).settle()
    out = capsys.readouterr().out
    assert api.calls == 1, "settled on the first look, not after the sensor's pokes"
    assert f"0 of 2 hours since {SINCE.isoformat()} have mature labels" in out
    assert "retrain_model asset_triggered__1 waits for labelled hours" in out


def test_a_retrain_whose_regime_is_met_stays_busy_until_its_sensor_pokes_again(tmp_path, monkeypatch):
    api = ChainApi([("retrain_model", "asset_triggered__1")], "up_for_reschedule", REQUEST)
    monkeypatch.setattr(chain, "SENSOR_GIVE_UP_S", 10.0)  # only the lake decides here
    with pytest.raises(LoopError, match="still running after 0 s: retrain_model asset_triggered__1"):
        _loop(api, timeout_s=0.1, lake=Lake(str(tmp_path / "lake")), regime_hours=0).settle()
    assert api.calls > 1 and api.xcom_reads == 1  # looked at many times, its request read once


class HourApi(ChainApi):
    """Runs listed by DAG for `pending`: each filter the watcher passes is applied here as Airflow would."""

    def __init__(self, runs: dict[str, list[dict]], registered: bool = True) -> None:
        super().__init__([], None)
        self._runs, self.registered = runs, registered

    def runs(self, dag_id, state=None, run_after_gte=None, end_date_gte=None):
        out = self._runs.get(dag_id, [])
        out = [r for r in out if state is None or r["state"] == state]
        out = [r for r in out if run_after_gte is None or r["run_after"] >= run_after_gte]
        return [r for r in out if end_date_gte is None or (r.get("end_date") or "") >= end_date_gte]

    def task_state(self, dag_id, run_id, task_id):
        if task_id == "register_challenger":
            return "success" if self.registered else "skipped"
        return super().task_state(dag_id, run_id, task_id)


HOUR_START = datetime(2026, 12, 4, 23, 0, 0, tzinfo=timezone.utc)
RETRAIN = {"dag_run_id": "asset_triggered__r1", "state": "success", "run_after": "2026-12-04T22:50:00+00:00",
           "start_date": "2026-12-04T22:50:01+00:00", "end_date": "2026-12-04T23:00:09+00:00"}


def test_a_retrain_the_monitor_asked_for_is_owed_until_its_run_exists():
    watch = _loop(HourApi({}))
    assert watch.pending(HOUR_START, retrain_asked=True) == [
        "the retrain_model run the monitor asked for (not started yet)"]
    assert watch.pending(HOUR_START, retrain_asked=False) == []
    started = {"retrain_model": [{**RETRAIN, "run_after": "2026-12-04T23:00:00+00:00"}]}
    assert _loop(HourApi(started, registered=False)).pending(HOUR_START, retrain_asked=True) == []


def test_a_registered_challenger_is_owed_a_promotion_even_one_started_before_its_retrain_run_ended():
    promoted_early = {"dag_run_id": "asset_triggered__p1", "state": "success",
                      "run_after": "2026-12-04T23:00:05+00:00"}  # while the retrain run was finishing
    assert _loop(HourApi({"retrain_model": [RETRAIN]})).pending(HOUR_START, False) == [
        "the promote_model run for the challenger of asset_triggered__r1 (not started yet)"]
    assert _loop(HourApi({"retrain_model": [RETRAIN], "promote_model": [promoted_early]})).pending(
        HOUR_START, False) == []
    # a retrain that skipped (nothing registered) owes no promotion; one that ended before the hour neither
    assert _loop(HourApi({"retrain_model": [RETRAIN]}, registered=False)).pending(HOUR_START, False) == []
    earlier = {**RETRAIN, "end_date": "2026-12-04T22:59:59+00:00"}
    assert _loop(HourApi({"retrain_model": [earlier]})).pending(HOUR_START, False) == []
