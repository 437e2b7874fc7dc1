"""The ids callers outside Airflow address (plugins/dag_ids.py) name DAGs and tasks that exist, and the
loop driver asks only for those; its patience with the regime sensor follows the sensor's poke interval."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins import dag_ids
from tooling.loop import chain
from tooling.loop import run as loop

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_IDS = {dag_ids.LAKE_OFFLOAD, dag_ids.MONITOR_MODEL, dag_ids.RETRAIN_MODEL, dag_ids.PROMOTE_MODEL,
           dag_ids.ROLLBACK_MODEL, dag_ids.BATCH_SCORE}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_every_dag_id_names_a_parsed_dag_and_every_dag_has_one(dagbag):
    assert dagbag.import_errors == {}
    assert DAG_IDS == set(dagbag.dag_ids)


def test_the_dags_the_loop_drives_exist(dagbag):
    used = set(loop.DAGS) | set(chain.CHAIN)
    assert used <= set(dagbag.dag_ids), f"the loop asks for DAGs that are not there: {used - set(dagbag.dag_ids)}"


def test_the_tasks_the_loop_reads_exist_in_retrain_model(dagbag):
    retrain = dagbag.dags[dag_ids.RETRAIN_MODEL]
    read = {dag_ids.PLAN_RETRAIN, dag_ids.WAIT_FOR_DATA, dag_ids.REGISTER_CHALLENGER}
    assert read <= set(retrain.task_ids)
    sensor = retrain.get_task(dag_ids.WAIT_FOR_DATA)
    assert dag_ids.WAIT_FOR_DATA in retrain.get_task(dag_ids.PLAN_RETRAIN).downstream_task_ids
    assert sensor.mode == "reschedule", "the loop recognises the waiting sensor by up_for_reschedule"


def test_the_loop_gives_up_on_the_sensor_after_more_than_two_of_its_pokes(dagbag):
    sensor = dagbag.dags[dag_ids.RETRAIN_MODEL].get_task(dag_ids.WAIT_FOR_DATA)
    assert sensor.poke_interval == dag_ids.REGIME_POKE_S
    assert 2 * sensor.poke_interval < chain.SENSOR_GIVE_UP_S < 3 * sensor.poke_interval
