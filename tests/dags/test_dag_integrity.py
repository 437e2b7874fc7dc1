"""Every DAG file imports under the real Airflow with no errors and carries tags, retries and a doc."""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
EXPECTED = {"lake_offload", "monitor_model", "retrain_model", "promote_model", "rollback_model", "batch_score"}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}, "\n".join(f"{f}: {e}" for f, e in dagbag.import_errors.items())


def test_expected_dags_are_there(dagbag):
    assert EXPECTED <= set(dagbag.dag_ids), f"missing: {EXPECTED - set(dagbag.dag_ids)}"


def test_one_dag_per_file_named_after_it(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert Path(dag.fileloc).stem == dag_id, f"{dag_id} lives in {dag.fileloc}"


def test_every_dag_has_tags_doc_and_retries(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md and len(dag.doc_md.strip()) > 40, f"{dag_id} has no doc (module docstring)"
        for task in dag.tasks:
            assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"


def test_every_start_date_comes_from_the_settings(monkeypatch):
    """Moving the schedules' start is one setting: batch_score starts at CONTINUUM_BATCH_START, every
    other DAG at CONTINUUM_OFFLOAD_START, the first hour the lake has."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("CONTINUUM_OFFLOAD_START", "2031-02-03T04:00Z")
    monkeypatch.setenv("CONTINUUM_BATCH_START", "2032-05-06T00:00Z")
    starts = {dag_id: dag.start_date.isoformat() for dag_id, dag in DagBag(dag_folder=str(DAGS)).dags.items()}
    assert starts == {**{dag_id: "2031-02-03T04:00:00+00:00" for dag_id in EXPECTED - {"batch_score"}},
                      "batch_score": "2032-05-06T00:00:00+00:00"}
